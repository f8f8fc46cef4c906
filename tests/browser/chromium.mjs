// What the browser tests share: failing with the step's name, checking a
// step, and running a test in a fresh headless Chromium that stops by itself.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

// The whole test stops by itself after this, whatever hangs.
const TEST_MS = 120_000;

let testName = "browser test";

export function fail(why) {
  console.error(`${testName} failed: ${why}`);
  process.exit(1);
}

export function check(ok, what) {
  if (!ok) fail(what);
  console.log(`ok: ${what}`);
}

// Runs `test(browser)` in a new Chromium with an empty profile, of
// `height` px, with `extraArgs`; fails the test named `name` on any error.
export async function inChromium(name, { height, extraArgs = [] }, test) {
  testName = name;
  setTimeout(() => fail(`took over ${TEST_MS / 1000} s`), TEST_MS).unref();
  const profile = mkdtempSync(join(tmpdir(), "seckill-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    viewport: { width: 1000, height },
    // Root needs --no-sandbox; the rest keeps Chromium off the network.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      ...extraArgs],
  }).catch((err) => fail(`cannot start Chromium: ${err.message}`));
  try {
    await test(browser);
  } catch (err) {
    fail(err.message);
  } finally {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  }
}
