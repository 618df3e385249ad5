// End-to-end (issue 11): a damaged store never stops monitoring. The app
// starts on a data directory whose vigil.db is not a database any more; it
// moves the file aside, starts a new store and shows live values, a banner
// naming the moved file, and a "recording unavailable" alarm at every bed.
// The sign-in accounts were in the damaged file: no first-administrator offer
// (issue 14), only the installer's way back.

import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { shot, startDriver, startSession, step } from "./harness.mjs";
import { By, until } from "selenium-webdriver";

const dataDir = mkdtempSync(join(tmpdir(), "vigil-corrupt-"));
// 64 KiB of one byte: SQLite reports "file is not a database".
writeFileSync(join(dataDir, "vigil.db"), Buffer.alloc(64 * 1024, 0xa5));

const env = { ...process.env, VIGIL_PASSPHRASE: "corrupt-e2e-passphrase" };
delete env.VIGIL_SITE_CONFIG;
const port = 4462;
let driver;
let failed = false;

let s;
try {
  driver = await startDriver(port, env, 180000);
  s = await startSession(port, ["--data-dir", dataDir, "--simulate", "stable"]);
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
    await shot(s, "corrupt-store.png");
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
    await shot(s, "corrupt-no-first-admin.png");
    await s.findElement(By.css('[data-testid="signin-cancel"]')).click();
    await s.wait(async () => (await s.findElements(By.css('[data-testid="signin"]'))).length === 0, 5000);
    // Monitoring went on throughout.
    await s.wait(async () => /^\d+$/.test(await s.findElement(By.css('[data-testid="hr-bed-1"]')).getText().catch(() => "")), 10000);
  });
} catch (e) {
  failed = true;
  console.error(`not ok - ${e?.stack ?? e}`);
  if (s) await shot(s, "corrupt-failure.png").catch(() => {});
} finally {
  if (s) await s.quit().catch(() => {});
  driver?.kill();
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
