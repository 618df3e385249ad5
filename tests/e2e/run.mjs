// End-to-end: the real Vigil binary (UI embedded, built with
// `tauri build --debug --no-bundle`) in a real WebKitGTK webview, driven by
// tauri-driver + WebKitWebDriver. Run under Xvfb (see .ci/test).
//
// It checks what a nurse sees: the SIMULATED banner, live HR at bed 1 that
// changes, admit and discharge, and saves screenshots under test-output/e2e/.

import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import assert from "node:assert/strict";
import { Builder, By, Capabilities, until } from "selenium-webdriver";

const root = resolve(import.meta.dirname, "../..");
const app = process.env.VIGIL_APP ?? join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), "debug/vigil");
const out = join(root, "test-output/e2e");
mkdirSync(out, { recursive: true });
const dataDir = mkdtempSync(join(tmpdir(), "vigil-e2e-"));

// The app reads its store key from here (no OS keychain under Xvfb).
process.env.VIGIL_PASSPHRASE = "e2e-test-passphrase";

const driverPort = 4444;
const driver = spawn("tauri-driver", ["--port", String(driverPort)], { stdio: ["ignore", "inherit", "inherit"] });
let session;
let failed = false;

async function waitForDriver() {
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${driverPort}/status`);
      if (r.ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("tauri-driver did not start");
}

/** Text of an element by test id; "" while it is not (yet) in the page. */
async function text(testid) {
  const els = await session.findElements(By.css(`[data-testid="${testid}"]`));
  if (els.length === 0) return "";
  try {
    return (await els[0].getText()).trim();
  } catch {
    return ""; // re-rendered between find and read
  }
}

async function shot(name) {
  const png = await session.takeScreenshot();
  const path = join(out, name);
  writeFileSync(path, Buffer.from(png, "base64"));
  console.log(`screenshot: ${path}`);
}

async function step(name, fn) {
  const t0 = Date.now();
  await fn();
  console.log(`ok - ${name} (${Date.now() - t0} ms)`);
}

try {
  await waitForDriver();
  const caps = new Capabilities();
  caps.setBrowserName("wry");
  caps.set("tauri:options", { application: app, args: ["--data-dir", dataDir] });
  session = await new Builder().withCapabilities(caps).usingServer(`http://127.0.0.1:${driverPort}/`).build();

  await step("the simulated-devices banner is shown", async () => {
    const banner = await session.wait(until.elementLocated(By.css('[data-testid="sim-banner"]')), 20000);
    await session.wait(async () => /SIMULATED/i.test(await banner.getText()), 20000);
  });

  let first;
  await step("bed 1 shows a live heart rate", async () => {
    await session.wait(async () => /^\d+$/.test(await text("hr-bed-1")), 30000, "no HR at bed 1");
    first = Number(await text("hr-bed-1"));
    assert.ok(first >= 30 && first <= 250, `implausible HR ${first}`);
  });

  await step("the heart rate changes (live, not a frozen value)", async () => {
    await session.wait(async () => {
      const t = await text("hr-bed-1");
      return /^\d+$/.test(t) && Number(t) !== first;
    }, 30000, "HR at bed 1 did not change");
    const stale = await session.findElements(By.css('[data-testid="stale-bed-1-147842"]'));
    assert.equal(stale.length, 0, "a live HR is marked stale");
  });
  await shot("overview.png");

  await step("a patient is admitted to bed 2", async () => {
    await session.findElement(By.css('[data-testid="admit-bed-2"]')).click();
    await session.wait(until.elementLocated(By.css('[data-testid="admit-name"]')), 5000);
    await session.findElement(By.css('[data-testid="admit-name"]')).sendKeys("Test Patient");
    await session.findElement(By.css('[data-testid="admit-mrn"]')).sendKeys("E2E-0001");
    await session.findElement(By.css('[data-testid="admit-dob"]')).sendKeys("1960-01-31");
    await session.findElement(By.css('[data-testid="admit-category"] option[value="adult"]')).click();
    await session.findElement(By.css('[data-testid="admit-submit"]')).click();
    await session.wait(async () => (await text("patient-bed-2")).includes("Test Patient"), 10000, "patient not shown");
  });
  await shot("admitted.png");

  await step("the single-bed view opens and shows the devices", async () => {
    await session.findElement(By.css('[data-testid="bed-tile-bed-2"]')).click();
    await session.wait(until.elementLocated(By.css('[data-testid="devices-bed-2"]')), 5000);
    await session.wait(async () => /^\d+$/.test(await text("hr-bed-2")), 10000);
  });
  await shot("bed-2.png");

  await step("the patient is discharged", async () => {
    await session.findElement(By.css('[data-testid="discharge-bed-2"]')).click();
    await session.wait(until.elementLocated(By.css('[data-testid="discharge-confirm"]')), 5000);
    await session.findElement(By.css('[data-testid="discharge-confirm"]')).click();
    await session.wait(async () => !(await text("patient-bed-2")).includes("Test Patient"), 10000);
  });
} catch (e) {
  failed = true;
  console.error(`not ok - ${e?.stack ?? e}`);
  if (session) await shot("failure.png").catch(() => {});
} finally {
  if (session) await session.quit().catch(() => {});
  driver.kill();
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
