// A class at the opening, in a real headless Chromium: a crowd of pages,
// each with its own student's id, sees the countdown with its buttons off,
// and clicks as soon as the buttons come on. Run by tests/browser.rs, which
// starts Redis and seckill (lua, an opening far off, --suffix-max 0) and
// passes:
//   node opening.mjs BASE_URL PAGES SCREENSHOT_DIR READY_FILE
// Once every page shows the countdown it writes READY_FILE; the test then
// moves the opening in Redis to a few seconds off, as a teacher may, so the
// test does not depend on how fast the pages open. Exits non-zero, saying
// which step failed, on the first failure.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { check, inChromium } from "./chromium.mjs";

const [base, pagesText, shots, readyFile] = process.argv.slice(2);
const PAGES = Number(pagesText);
const STEP_MS = 30_000;

// Tabs in the background keep their timers, as a class's own screens do.
const extraArgs = ["--disable-background-timer-throttling", "--disable-renderer-backgrounding"];
await inChromium("opening test", { height: 900, extraArgs }, run);

async function run(browser) {
  const problems = [];
  const pages = [];
  for (let i = 0; i < PAGES; i++) {
    const page = i === 0 ? (browser.pages()[0] ?? (await browser.newPage())) : await browser.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.on("pageerror", (err) => problems.push(`page ${i}: uncaught: ${err.message}`));
    await page.goto(`${base}/seckill`);
    await page.getByLabel("User ID", { exact: true }).fill(`student${i + 1}`);
    pages.push(page);
  }
  const first = pages[0];
  for (const page of pages) {
    await page.waitForFunction(() => document.getElementById("submit").disabled);
  }
  check(true, `${PAGES} pages opened, each with its buttons off`);
  await first.waitForFunction(() => /opens at .*: in \d+\.\d s/.test(document.getElementById("opening").textContent));
  check(true, `countdown: ${await first.locator("#opening").textContent()}`);
  check(await first.locator("#submit").isDisabled(), "the buy button is off before the opening");
  check(await first.locator("#crowd-fire").isDisabled(), "the crowd button is off before the opening");
  await first.screenshot({ path: join(shots, "seckill-countdown.png"), fullPage: true });
  console.log(`ok: screenshot of the countdown in ${join(shots, "seckill-countdown.png")}`);
  writeFileSync(readyFile, "ready\n");
  // The test moves the opening near: each page's countdown follows it.
  await first.waitForFunction(() => /: in [0-9]\.\d s/.test(document.getElementById("opening").textContent),
    null, { timeout: STEP_MS });
  check(true, `countdown moved near: ${await first.locator("#opening").textContent()}`);

  // Each student clicks the moment the button comes on.
  const clicked = await Promise.all(pages.map(async (page) => {
    const button = page.locator("#submit");
    await button.waitFor({ state: "visible" });
    await page.waitForFunction(() => !document.getElementById("submit").disabled, null, { polling: 10 });
    const at = Date.now();
    await button.click();
    await page.waitForFunction(() => document.getElementById("res").textContent !== "");
    return { at, res: await page.locator("#res").textContent() };
  }));
  const bought = clicked.filter(({ res }) => res.endsWith("bought one!")).length;
  const early = clicked.filter(({ res }) => res.includes("not open yet")).length;
  const spread = Math.max(...clicked.map((c) => c.at)) - Math.min(...clicked.map((c) => c.at));
  check(bought === PAGES, `${bought} of ${PAGES} pages bought at the opening (${early} too early), ` +
    `their clicks within ${spread} ms`);
  check((await first.locator("#opening").textContent()).includes("open"), "the page says the sale is open");
  await first.waitForFunction((n) => document.getElementById("winners").textContent === String(n), PAGES);
  check(true, `the live figures show ${PAGES} winners`);
  await first.screenshot({ path: join(shots, "seckill-opened.png"), fullPage: true });
  console.log(`ok: screenshot after the opening in ${join(shots, "seckill-opened.png")}`);
  check(problems.length === 0, `no page errors${problems.length ? `: ${problems.join("; ")}` : ""}`);
}
