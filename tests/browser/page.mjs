// The page in a real headless Chromium, as a class would use it. Run by
// tests/browser.rs, which starts Redis and seckill (watch, stock 1000,
// --suffix-max 0) and passes:
//   node page.mjs BASE_URL REDIS_PID SECKILL_PID SCREENSHOT_DIR
// Exits non-zero, saying which step failed, on the first failure.
import { join } from "node:path";
import { check, fail, inChromium } from "./chromium.mjs";

const [base, redisPid, seckillPid, shots] = process.argv.slice(2);
const STEP_MS = 10_000;

await inChromium("browser test", { height: 1100 }, async (browser) =>
  run(browser.pages()[0] ?? (await browser.newPage())));

async function run(page) {
  page.setDefaultTimeout(STEP_MS);
  // Console errors fail the test, but for the failed loads a step causes on
  // purpose (a refused id, Redis down, the server gone).
  const problems = [];
  let faultsExpected = false;
  page.on("pageerror", (err) => problems.push(`uncaught: ${err.message}`));
  page.on("console", (msg) => {
    const expected = faultsExpected && msg.text().startsWith("Failed to load resource");
    if (msg.type() === "error" && !expected) problems.push(`console: ${msg.text()}`);
  });
  const userField = page.getByLabel("User ID", { exact: true });
  const text = (selector) => page.locator(selector).textContent();
  const number = async (selector) => Number(await text(selector));
  const until = (what, fn, arg) =>
    page.waitForFunction(fn, arg, { timeout: STEP_MS }).catch(() => fail(`waited 10 s for ${what}`));
  // Waits until the element with `id` shows exactly `value`.
  const untilShows = (what, id, value) =>
    until(what, ([id, value]) => document.getElementById(id).textContent === value, [id, String(value)]);
  // Tells the page its tab is hidden or shown, as switching tabs does.
  const setHidden = (hidden) => page.evaluate((hidden) => {
    Object.defineProperty(document, "hidden", { value: hidden, configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);

  await page.goto(`${base}/seckill`);
  await until("the first live figures", () => /^\d+$/.test(document.getElementById("stock").textContent));
  const initial = await number("#stock");
  check(initial === 1000 && (await number("#initial")) === 1000, `#stock shows the initial stock (${initial})`);

  // Type an id, press Enter: the tutorial's purchase.
  await userField.fill("alice");
  await userField.press("Enter");
  await until("the answer to alice", () => document.getElementById("res").textContent !== "");
  check((await text("#rep")).includes("alice") && (await text("#rep")).endsWith("answered 1"),
    `#rep: ${await text("#rep")}`);
  check((await text("#res")) === "user alice: bought one!", `#res: ${await text("#res")}`);
  await untilShows("#stock to fall by one", "stock", initial - 1);
  check(true, "#stock fell to 999");

  // The same id again, by the button: repeat.
  await page.locator("#submit").click();
  await until("the repeat answer", () => document.getElementById("res").textContent.includes("already bought"));
  check((await text("#rep")).endsWith("answered -2"), `a second click: ${await text("#res")}`);

  // Bad ids are told, not ignored.
  await userField.fill("   ");
  await page.locator("#submit").click();
  check((await text("#res")).startsWith("Type a user ID first"), `a blank id: ${await text("#res")}`);
  faultsExpected = true;
  await userField.fill("x".repeat(70));
  await page.locator("#submit").click();
  await until("the refusal of a long id", () => document.getElementById("res").textContent.includes("refused"));
  check((await text("#res")).includes("the most is 64"), `a long id: ${await text("#res")}`);
  faultsExpected = false;

  // The crowd: 200 buyers from the page, and their tally.
  await userField.fill("class");
  await page.getByLabel(/^Crowd/).fill("200");
  await page.locator("#crowd-fire").click();
  await until("the crowd's tally", () => document.getElementById("crowd-tally").textContent.startsWith("Crowd of"));
  const tally = await text("#crowd-tally");
  const [bought, soldOut, repeat, lost, refused, unanswered] =
    tally.match(/\d+(?= (bought|sold out|repeat|lost the race|refused|unanswered))/g).map(Number);
  check(bought + soldOut + repeat + lost === 200 && refused === 0 && unanswered === 0 && bought > 0,
    `the crowd's tally adds up: ${tally}`);
  await untilShows("#stock to show the crowd's purchases", "stock", initial - 1 - bought);
  check(true, `#stock fell to ${initial - 1 - bought}`);

  // A load from outside, as ab in another terminal: the class watches it drain.
  const before = await number("#stock");
  const load = hammer(`${base}/seckill`, 1500, 20);
  // Mid-sale: the stock a hundred down, so the chart shows it falling.
  await until("#stock to fall by 100 under the load",
    (n) => Number(document.getElementById("stock").textContent) <= n, before - 100);
  await page.screenshot({ path: join(shots, "seckill-mid-sale.png"), fullPage: true });
  console.log(`ok: screenshot mid-sale in ${join(shots, "seckill-mid-sale.png")} (stock ${await text("#stock")})`);
  const answered = await load;
  const stats = await (await fetch(`${base}/seckill/stats`)).json();
  await untilShows("#stock to agree with Redis", "stock", stats.remaining);
  check(stats.remaining + stats.winners === initial, `after ${answered} more buyers: ${stats.winners} winners + ${stats.remaining} left = ${initial}`);
  await untilShows("#conflicts to agree with the server", "conflicts", stats.conflicts);
  check(true, `#conflicts shows ${stats.conflicts}`);

  // A hidden tab stops asking: once the poll in flight when it was hidden
  // is answered, none is sent for three poll periods (1.5 s).
  const isPoll = (req) => req.url().endsWith("/seckill/stats");
  let asked = 0, done = 0;
  page.on("request", (req) => isPoll(req) && (asked += 1));
  page.on("requestfinished", (req) => isPoll(req) && (done += 1));
  page.on("requestfailed", (req) => isPoll(req) && (done += 1));
  await setHidden(true);
  const settled = Date.now() + STEP_MS;
  while (done < asked && Date.now() < settled) await new Promise((r) => setTimeout(r, 20));
  check(done >= asked, `the poll in flight answered (${done} of ${asked})`);
  const askedWhenHidden = asked;
  await page.waitForTimeout(1500);
  check(asked === askedWhenHidden, `no polls while hidden (${asked - askedWhenHidden} in 1.5 s)`);
  // Shown again, it asks at once and goes on asking.
  const twoPolls = page.waitForRequest(isPoll).then(() => page.waitForRequest(isPoll));
  await setHidden(false);
  await twoPolls.catch(() => fail("waited 10 s for two polls once shown"));
  check(true, "polling again once shown");

  // A phone's width: nothing sticks out sideways.
  await page.setViewportSize({ width: 360, height: 740 });
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.screenshot({ path: join(shots, "seckill-phone.png"), fullPage: true });
  check(wide <= 360, `fits a 360 px screen (${wide} px wide)`);
  check(problems.length === 0, `no console errors so far${problems.length ? `: ${problems.join("; ")}` : ""}`);

  // Redis goes away: the purchase and the live figures say so.
  faultsExpected = true;
  process.kill(Number(redisPid), "SIGKILL");
  await userField.fill("bob");
  await page.locator("#submit").click();
  await until("the Redis-down sentence", () => document.getElementById("res").textContent.includes("Redis"));
  check((await text("#res")).includes("is not answering"), `Redis down: ${await text("#res")}`);
  await until("the live figures to say Redis is down",
    () => document.getElementById("live-note").textContent.includes("Redis"));
  check(true, `live note: ${await text("#live-note")}`);
  await page.setViewportSize({ width: 1000, height: 1100 });
  await page.screenshot({ path: join(shots, "seckill-redis-down.png"), fullPage: true });

  // The server goes away: a network failure.
  process.kill(Number(seckillPid), "SIGKILL");
  await page.locator("#submit").click();
  await until("the network-failure sentence", () => document.getElementById("res").textContent.includes("could not be reached"));
  check(true, `server gone: ${await text("#res")}`);
  check(problems.length === 0, `no console errors but the expected failed loads${problems.length ? `: ${problems.join("; ")}` : ""}`);
}

// `total` purchases from Node, `concurrency` at a time, each worker pausing
// a little so the load lasts a few seconds. Resolves to how many were answered.
async function hammer(url, total, concurrency) {
  let next = 0, answered = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ msg: `load-${i}` }),
      });
      if (response.ok) answered += 1;
      await response.arrayBuffer();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return answered;
}
