// End-to-end (issue 11): a damaged store never stops monitoring. The app
// starts on a data directory whose vigil.db is not a database any more; it
// moves the file aside, starts a new store and shows live values, a banner
// naming the moved file, and a "recording unavailable" alarm at every bed.

import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import assert from "node:assert/strict";
import { failAfter } from "./watchdog.mjs";
import { Builder, By, Capabilities, until } from "selenium-webdriver";

const root = resolve(import.meta.dirname, "../..");
const app = process.env.VIGIL_APP ?? join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), "debug/vigil");
const out = join(root, "test-output/e2e");
mkdirSync(out, { recursive: true });
const dataDir = mkdtempSync(join(tmpdir(), "vigil-corrupt-"));
// 64 KiB of one byte: SQLite reports "file is not a database".
writeFileSync(join(dataDir, "vigil.db"), Buffer.alloc(64 * 1024, 0xa5));

const env = { ...process.env, VIGIL_PASSPHRASE: "corrupt-e2e-passphrase" };
delete env.VIGIL_SITE_CONFIG;
const port = 4462;
const driver = spawn("tauri-driver", ["--port", String(port), "--native-port", String(port + 1)], {
  env,
  stdio: ["ignore", "inherit", "inherit"],
  detached: true, // its own process group: the watchdog stops everything it started
});
let failed = false;
failAfter(180000, driver);

async function waitForDriver() {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/status`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("tauri-driver did not start");
}

async function step(name, fn) {
  const t0 = Date.now();
  await fn();
  console.log(`ok - ${name} (${Date.now() - t0} ms)`);
}

let s;
try {
  await waitForDriver();
  const caps = new Capabilities();
  caps.setBrowserName("wry");
  caps.set("tauri:options", { application: app, args: ["--data-dir", dataDir, "--simulate", "stable"] });
  s = await new Builder().withCapabilities(caps).usingServer(`http://127.0.0.1:${port}/`).build();
  await step("[corrupt store] monitoring goes on: bed 1 shows a live heart rate", async () => {
    await s.wait(async () => /^\d+$/.test(await s.findElement(By.css('[data-testid="hr-bed-1"]')).getText().catch(() => "")), 30000);
  });
  await step("[corrupt store] the damaged file was moved aside, never deleted", async () => {
    const moved = readdirSync(dataDir).filter((n) => n.startsWith("vigil.db.corrupt-") && !/-(wal|shm)$/.test(n));
    assert.equal(moved.length, 1, readdirSync(dataDir).join(", "));
  });
  await step("[corrupt store] a banner names the moved file", async () => {
    const banner = await s.findElement(By.css('[data-testid="store-recovered-banner"]'));
    await s.wait(async () => /vigil\.db\.corrupt-/.test(await banner.getText()), 10000);
  });
  await step("[corrupt store] every bed shows the recording-unavailable alarm", async () => {
    await s.wait(async () => {
      for (const bed of ["bed-1", "bed-2", "bed-3", "bed-4"]) {
        // textContent: the tile truncates the message with an ellipsis.
        const t = await s
          .executeScript((b) => document.querySelector(`[data-testid="alarm-bar-${b}"]`)?.textContent ?? "", bed)
          .catch(() => "");
        if (!/recording unavailable/i.test(t)) return false;
      }
      return true;
    }, 15000);
    writeFileSync(join(out, "corrupt-store.png"), Buffer.from(await s.takeScreenshot(), "base64"));
  });
  await step("[corrupt store] the users were in the damaged file: Sign in explains the installer's way back, never offers a first administrator", async () => {
    // Whoever stands at the workstation must not become admin because the store was replaced.
    const open = await s.wait(until.elementLocated(By.css('[data-testid="sign-in-open"]')), 20000);
    await s.wait(until.elementIsVisible(open), 20000);
    await open.click();
    await s.wait(async () => (await s.findElement(By.css('[data-testid="signin"] h1')).getText().catch(() => "")) === "No one can sign in", 10000);
    const t = await s.findElement(By.css('[data-testid="signin"] .unlock-text')).getText();
    assert.match(t, /vigil user add/);
    assert.equal(await s.findElement(By.css('[data-testid="signin-name"]')).isDisplayed(), false, "a user-name field is offered");
    assert.equal(await s.findElement(By.css('[data-testid="signin-submit"]')).isDisplayed(), false, "a submit button is offered");
    writeFileSync(join(out, "corrupt-no-first-admin.png"), Buffer.from(await s.takeScreenshot(), "base64"));
    await s.findElement(By.css('[data-testid="signin-cancel"]')).click();
    await s.wait(async () => (await s.findElements(By.css('[data-testid="signin"]'))).length === 0, 5000);
    // Monitoring went on throughout.
    await s.wait(async () => /^\d+$/.test(await s.findElement(By.css('[data-testid="hr-bed-1"]')).getText().catch(() => "")), 10000);
  });
} catch (e) {
  failed = true;
  console.error(`not ok - ${e?.stack ?? e}`);
  if (s) await s.takeScreenshot().then((png) => writeFileSync(join(out, "corrupt-failure.png"), Buffer.from(png, "base64"))).catch(() => {});
} finally {
  if (s) await s.quit().catch(() => {});
  driver.kill();
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
