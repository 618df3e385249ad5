// End-to-end: a workstation with no key configured (no VIGIL_PASSPHRASE, no
// key file, no OS keychain) shows the unlock screen — Vigil never runs
// unencrypted. At first start it creates the store: a passphrase of at least
// 12 characters, typed twice (checked by the core too, whatever the page
// sends); on the next start a wrong one is refused readably and the right one
// opens the same store.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { shot, startDriver, startSession, step } from "./harness.mjs";
import { signIn } from "./users.mjs";
import { By, until } from "selenium-webdriver";

const dataDir = mkdtempSync(join(tmpdir(), "vigil-unlock-"));
const xdg = mkdtempSync(join(tmpdir(), "vigil-unlock-xdg-"));

// No key anywhere: no passphrase variable, no session bus (so no keychain).
const env = { ...process.env, XDG_DATA_HOME: xdg };
delete env.VIGIL_PASSPHRASE;
delete env.DBUS_SESSION_BUS_ADDRESS;
const port = 4452;
let driver;
let failed = false;

const session = () => startSession(port, ["--data-dir", dataDir]);

async function unlock(s, passphrase, confirm = null) {
  const input = await s.wait(until.elementLocated(By.css('[data-testid="unlock-passphrase"]')), 20000);
  await input.clear();
  await input.sendKeys(passphrase);
  const again = await s.findElement(By.css('[data-testid="unlock-confirm"]'));
  assert.equal(await again.isDisplayed(), confirm !== null, "the second field shows at first start only");
  if (confirm !== null) {
    await again.clear();
    await again.sendKeys(confirm);
  }
  await s.findElement(By.css('[data-testid="unlock-submit"]')).click();
}

async function errorText(s) {
  let t = "";
  await s.wait(async () => {
    t = await s.findElement(By.css('[data-testid="unlock-error"]')).getText();
    return t.length > 0 && !/Unlocking|Creating/.test(t);
  }, 20000);
  return t;
}

async function liveHr(s) {
  await s.wait(async () => /^\d+$/.test(await s.findElement(By.css('[data-testid="hr-bed-1"]')).getText().catch(() => "")), 30000);
}

let s;
try {
  driver = await startDriver(port, env, 180000);
  s = await session();
  await step("[unlock] no key, first start: create the store, nothing else", async () => {
    await s.wait(until.elementLocated(By.css('[data-testid="unlock-passphrase"]')), 20000);
    await s.wait(async () => (await s.findElement(By.css(".unlock-form h1")).getText()) === "Create the encrypted store", 10000);
    // No keychain here (no session bus): it is not offered.
    assert.equal(await s.findElement(By.css('[data-testid="unlock-keychain-choice"]')).isDisplayed(), false);
    await shot(s, "unlock.png");
  });
  await step("[unlock] a short passphrase and two that differ are refused readably", async () => {
    await unlock(s, "elevenchars", "elevenchars");
    assert.match(await errorText(s), /at least 12 characters/);
    await unlock(s, "first-passphrase-123", "first-passphrase-124");
    assert.match(await errorText(s), /differ/);
  });
  await step("[unlock] the core refuses them too, whatever the page sends", async () => {
    const call = (args) =>
      s.executeAsyncScript(
        "const done = arguments[arguments.length - 1];" +
          "window.__TAURI_INTERNALS__.invoke('unlock', arguments[0]).then(() => done('ok'), (e) => done(e && e.code ? e.code : 'ipc'));",
        args,
      );
    assert.equal(await call({ passphrase: "short-pass", confirm: "short-pass" }), "weak_passphrase");
    assert.equal(await call({ passphrase: "first-passphrase-123", confirm: null }), "passphrase_mismatch");
    assert.equal(await call({ passphrase: "first-passphrase-123", confirm: "other-passphrase-123" }), "passphrase_mismatch");
    assert.equal(await call({}), "ipc", "a call without a passphrase is refused by the IPC layer");
  });
  await step("[unlock] the first passphrase, typed twice, creates the store and the ward runs", async () => {
    await unlock(s, "first-passphrase-123", "first-passphrase-123");
    await liveHr(s);
  });
  await step("[unlock] no user yet: the app offers the first administrator, made and signed in", async () => {
    await s.wait(async () => (await s.findElement(By.css('[data-testid="signin"] h1')).getText().catch(() => "")) === "Create the first administrator", 20000);
    await liveHr(s); // monitoring goes on behind the dialog
    const fill = async (id, v) => {
      const el = await s.findElement(By.css(`[data-testid="${id}"]`));
      await el.clear();
      await el.sendKeys(v);
    };
    await fill("signin-name", "e2e-admin");
    await fill("signin-password", "admin password 12");
    await fill("signin-confirm", "admin password 13");
    await s.findElement(By.css('[data-testid="signin-submit"]')).click();
    await s.wait(async () => /differ/.test(await s.findElement(By.css('[data-testid="signin-error"]')).getText()), 5000);
    await fill("signin-password", "admin password 12");
    await fill("signin-confirm", "admin password 12");
    await s.findElement(By.css('[data-testid="signin-submit"]')).click();
    await s.wait(async () => (await s.findElement(By.css('[data-testid="user-signed"]')).getText().catch(() => "")) === "e2e-admin (admin)", 20000);
    await shot(s, "first-admin.png");
  });
  await s.quit();
  s = await session();
  await step("[unlock] next start: a wrong passphrase is refused, the store untouched", async () => {
    await unlock(s, "not-the-passphrase");
    assert.match(await errorText(s), /wrong passphrase/);
  });
  await step("[unlock] the right passphrase opens the same store", async () => {
    await unlock(s, "first-passphrase-123");
    await liveHr(s);
  });
  await step("[unlock] signed out at start; a wrong password is refused, the admin made at first start signs in", async () => {
    await s.wait(until.elementLocated(By.css('[data-testid="sign-in-open"]')), 20000);
    await s.findElement(By.css('[data-testid="sign-in-open"]')).click();
    await s.wait(until.elementLocated(By.css('[data-testid="signin-name"]')), 5000);
    await s.findElement(By.css('[data-testid="signin-name"]')).sendKeys("e2e-admin");
    await s.findElement(By.css('[data-testid="signin-password"]')).sendKeys("not the password");
    await s.findElement(By.css('[data-testid="signin-submit"]')).click();
    await s.wait(async () => /wrong user name or password/.test(await s.findElement(By.css('[data-testid="signin-error"]')).getText()), 10000);
    await s.findElement(By.css('[data-testid="signin-cancel"]')).click();
    // The wrong password holds this name back 1 s.
    await new Promise((r) => setTimeout(r, 1200));
    await signIn(s, { name: "e2e-admin", role: "admin", password: "admin password 12" });
  });
  await step("[unlock] break-glass: the admin takes emergency access with a reason; the header says so", async () => {
    const open = await s.findElement(By.css('[data-testid="break-glass-open"]'));
    await s.wait(until.elementIsVisible(open), 5000);
    await open.click();
    const reason = await s.wait(until.elementLocated(By.css('[data-testid="break-glass-reason"]')), 5000);
    await s.findElement(By.css('[data-testid="break-glass-submit"]')).click();
    await s.wait(async () => /reason/.test(await s.findElement(By.css('[data-testid="break-glass-error"]')).getText()), 5000);
    await reason.sendKeys("bed 1 alarming, no nurse on the ward");
    await s.findElement(By.css('[data-testid="break-glass-submit"]')).click();
    const label = async () => s.findElement(By.css('[data-testid="user-signed"]')).getText().catch(() => "");
    await s.wait(async () => /EMERGENCY ACCESS 1[45]:\d\d left/.test(await label()), 10000);
    // It counts down on screen, second by second.
    const first = await label();
    await s.wait(async () => (await label()) !== first, 3000, `the emergency-access countdown stands still at "${first}"`);
    assert.equal(await s.findElement(By.css('[data-testid="break-glass-open"]')).isDisplayed(), false, "offered again while active");
    await shot(s, "break-glass.png");
    // The longer header line never pushes "Pause all" or the clock off the screen.
    const fits = await s.executeScript(() =>
      ["pause-all", "clock"].every((id) => {
        const r = document.querySelector(`[data-testid="${id}"]`).getBoundingClientRect();
        return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth;
      }),
    );
    assert.ok(fits, "Pause all or the clock is off screen");
  });
} catch (e) {
  failed = true;
  console.error(`not ok - ${e?.stack ?? e}`);
  // A dead session must not hide the real error behind a second one.
  if (s) await shot(s, "unlock-failure.png").catch(() => {});
} finally {
  if (s) await s.quit().catch(() => {});
  driver?.kill();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(xdg, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
