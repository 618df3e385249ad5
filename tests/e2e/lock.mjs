// End-to-end (issue 14): the idle lock. The installer's site file sets
// `session.idle_lock_s`; after that long without input the signed-in clinician
// is signed out: the patient's name, MRN and date of birth leave the page (the
// DOM, not only the visible text), the numerics stay, and an alarm that starts
// while locked still flashes and sounds. Signing in with the shift PIN brings
// the patient details back. Then About (issue 16): the version, commit and build
// date `vigil --version` prints, intended use, licence, SBOM; "Check for updates"
// asks the site's update server (a loopback server here) and a clinician sees no Install.

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { app, shot, startDriver, startSession, step, text } from "./harness.mjs";
import { E2E_ADMIN, E2E_ADMIN_PASSWORD, addUser, signIn } from "./users.mjs";
import { By, until } from "selenium-webdriver";

const IDLE_LOCK_S = 30; // the shortest the core allows (site.rs IDLE_LOCK_MIN)
const PATIENT = { name: "Idle Lockwood", mrn: "LOCK-7731", dob: "1958-11-02" };
const PIN = "2580";

const dataDir = mkdtempSync(join(tmpdir(), "vigil-lock-"));
// The installer's file (root-owned directory, not writable by others): the idle lock is protected.
const siteDir = mkdtempSync(join(tmpdir(), "vigil-lock-site-"));
// The site's update server, on loopback: it offers 9.9.9 (the check only reads the manifest).
const updates = createServer((req, res) => {
  const body = JSON.stringify({
    version: "9.9.9",
    notes: "e2e",
    platforms: { "linux-x86_64": { url: "http://127.0.0.1:9/none.AppImage", signature: "bm90IGNoZWNrZWQgaGVyZQ==" } },
  });
  res.writeHead(req.url === "/latest.json" ? 200 : 404, { "content-type": "application/json" }).end(body);
});
await new Promise((r) => updates.listen(0, "127.0.0.1", r));
const updateEndpoint = `http://127.0.0.1:${updates.address().port}/latest.json`;
writeFileSync(join(siteDir, "site.json"), JSON.stringify({ session: { idle_lock_s: IDLE_LOCK_S }, updates: { endpoint: updateEndpoint } }));
const env = { ...process.env, VIGIL_PASSPHRASE: "lock-e2e-passphrase", VIGIL_SITE_CONFIG: join(siteDir, "site.json") };
addUser(app, dataDir, { env });

const port = 4472;
let driver;
let s;
let failed = false;

/** Alarms on screen: id, priority, acknowledged, whether it flashes. */
function alarms() {
  return s.executeScript(() =>
    [...document.querySelectorAll('[data-testid^="alarm-bed-"]')].map((el) => ({
      testid: el.getAttribute("data-testid"),
      priority: el.getAttribute("data-priority"),
      acknowledged: el.getAttribute("data-acknowledged"),
      animation: getComputedStyle(el).animationName,
    })),
  );
}

/** The page's whole markup (hidden elements and attributes included). */
const markup = () => s.executeScript(() => document.documentElement.outerHTML);

try {
  driver = await startDriver(port, env, 240000);
  // Deterioration at 10x: new alarm conditions keep arriving for ~2 minutes.
  s = await startSession(port, ["--data-dir", dataDir, "--simulate", "deterioration", "--speed", "10"]);

  await step("[lock] signed in, a patient admitted to bed 1, a shift PIN set", async () => {
    await s.wait(async () => /^\d+$/.test(await text(s, "hr-bed-1")), 30000, "no HR at bed 1");
    await signIn(s);
    await s.findElement(By.css('[data-testid="admit-bed-1"]')).click();
    await s.wait(until.elementLocated(By.css('[data-testid="admit-name"]')), 5000);
    await s.findElement(By.css('[data-testid="admit-name"]')).sendKeys(PATIENT.name);
    await s.findElement(By.css('[data-testid="admit-mrn"]')).sendKeys(PATIENT.mrn);
    await s.findElement(By.css('[data-testid="admit-dob"]')).sendKeys(PATIENT.dob);
    await s.findElement(By.css('[data-testid="admit-category"] option[value="adult"]')).click();
    await s.findElement(By.css('[data-testid="admit-submit"]')).click();
    await s.wait(async () => (await text(s, "patient-bed-1")).includes(PATIENT.name), 10000, "patient not shown");
    await s.findElement(By.css('[data-testid="set-pin-open"]')).click();
    await (await s.wait(until.elementLocated(By.css('[data-testid="set-pin-pin"]')), 5000)).sendKeys(PIN);
    await s.findElement(By.css('[data-testid="set-pin-confirm"]')).sendKeys(PIN);
    await s.findElement(By.css('[data-testid="set-pin-submit"]')).click();
    await s.wait(async () => (await s.findElements(By.css('[data-testid="set-pin"]'))).length === 0, 10000, "the PIN dialog stays open");
  });

  let lockedAfterS;
  let atLock = new Set();
  await step(`[lock] no input for ${IDLE_LOCK_S} s: signed out, no name/MRN/DOB anywhere in the page, numerics stay`, async () => {
    const t0 = Date.now();
    // Polling through the driver is no input to the page: the lock must come by itself.
    await s.wait(async () => (await text(s, "user-signed")) === "", (IDLE_LOCK_S + 20) * 1000, "still signed in after the idle time");
    lockedAfterS = (Date.now() - t0) / 1000;
    await s.wait(async () => !(await markup()).includes(PATIENT.name), 10000, "the name stays in the page");
    const html = await markup();
    for (const [what, v] of Object.entries(PATIENT)) assert.ok(!html.includes(v), `the ${what} is still in the locked page`);
    assert.match(await text(s, "hr-bed-1"), /^\d+$/, "the numerics went with the lock");
    atLock = new Set((await alarms()).filter((a) => a.acknowledged === "false").map((a) => a.testid));
    await shot(s, "idle-locked.png");
    console.log(`   signed out after ${lockedAfterS.toFixed(0)} s without input; ${atLock.size} alarm(s) unacknowledged at that moment`);
  });

  await step("[lock] an alarm that starts while locked flashes and sounds", async () => {
    let fresh;
    await s.wait(
      async () => {
        fresh = (await alarms()).find((a) => a.acknowledged === "false" && !atLock.has(a.testid) && a.animation !== "none");
        return !!fresh;
      },
      90000,
      "no new flashing alarm while locked",
    );
    await s.wait(async () => /^playing (high|medium|low)$/.test(await text(s, "audio-state")), 10000, `no sound for ${fresh.testid}: ${await text(s, "audio-state")}`);
    assert.equal(await text(s, "user-signed"), "", "signed in again by itself");
    console.log(`   ${fresh.testid} (${fresh.priority}), audio: ${await text(s, "audio-state")}`);
    await shot(s, "idle-locked-alarm.png");
  });

  await step("[lock] the shift PIN signs the clinician in again: the patient details are back", async () => {
    await signIn(s, { password: PIN });
    await s.wait(async () => (await text(s, "patient-bed-1")).includes(PATIENT.name), 10000, "the name is not back");
  });

  await step("[about] version, commit and build date as `vigil --version` says; intended use, licence, SBOM; a clinician checks, no Install", async () => {
    // "0.1.0 (commit 0123456789ab, built 2026-12-05)"
    const version = execFileSync(app, ["--version"]).toString();
    const [, v, commit, built] = version.match(/(\d+\.\d+\.\d+\S*) \(commit (\w+), built (\d{4}-\d{2}-\d{2})\)/) ?? [];
    assert.ok(commit, `--version said ${version}`);
    await s.findElement(By.css('[data-testid="about-open"]')).click();
    const about = await s.wait(until.elementLocated(By.css('[data-testid="about"]')), 10000);
    await s.wait(async () => (await about.getText()).includes("commit "), 10000, "no build line in About");
    const t = await about.getText();
    assert.match(t, new RegExp(`Version\\s*${v.replace(/\./g, "\\.")}`), t);
    assert.ok(t.includes(`commit ${commit}, built ${built}`), t);
    assert.match(t, /does not replace clinical judgement/);
    assert.match(t, /not an alarm system of record unless this site has validated it/);
    assert.match(t, /Apache-2\.0/);
    assert.match(t, /vigil-sbom\.cdx\.json/);
    assert.ok(t.includes(updateEndpoint), t);
    await s.findElement(By.css('[data-testid="update-check"]')).click();
    await s.wait(async () => /9\.9\.9 is available/.test(await text(s, "update-status")), 20000, `check: ${await text(s, "update-status")}`);
    assert.equal(await s.findElement(By.css('[data-testid="update-install"]')).isDisplayed(), false, "only an admin sees Install");
    await shot(s, "about.png");
    console.log(`   About: ${v}, commit ${commit}, built ${built}; ${await text(s, "update-status")}`);
  });

  await step("[about] an admin sees Install; with beds monitored it first asks, naming how many and that monitoring stops", async () => {
    await s.findElement(By.css('[data-testid="about-close"]')).click();
    await s.findElement(By.css('[data-testid="sign-out"]')).click();
    await signIn(s, { name: E2E_ADMIN, role: "admin", password: E2E_ADMIN_PASSWORD });
    await s.findElement(By.css('[data-testid="about-open"]')).click();
    await (await s.wait(until.elementLocated(By.css('[data-testid="update-check"]')), 10000)).click();
    const install = await s.findElement(By.css('[data-testid="update-install"]'));
    await s.wait(until.elementIsVisible(install), 20000, "no Install for the admin");
    await install.click();
    await s.wait(async () => (await text(s, "update-confirm-text")) !== "", 10000, "no confirmation");
    const ask = await text(s, "update-confirm-text");
    // Simulated ward: every bed has live devices (and bed 1 a patient).
    assert.match(ask, /^4 beds are being monitored\. Installing Vigil 9\.9\.9 restarts it: monitoring and alarms stop at those beds/, ask);
    await shot(s, "about-install-confirm.png");
    // Confirmed: the download (from a port nothing listens on) fails; nothing installed, monitoring goes on.
    await s.findElement(By.css('[data-testid="update-confirm"]')).click();
    await s.wait(async () => /error|refused|failed|connect/i.test(await text(s, "update-status")), 30000, `install: ${await text(s, "update-status")}`);
    console.log(`   confirm: ${ask.slice(0, 60)}…; install: ${await text(s, "update-status")}`);
    assert.match(await text(s, "hr-bed-1"), /^\d+$/, "monitoring goes on");
    // The page cannot reach the plugin's own commands (no `updater:` permission): only the guarded ones.
    const direct = await s.executeAsyncScript(
      "const done = arguments[arguments.length - 1];" +
        "window.__TAURI_INTERNALS__.invoke('plugin:updater|check', {}).then(() => done('allowed'), (e) => done(String(e)));",
    );
    assert.match(direct, /not allowed/i, `plugin:updater|check from the page: ${direct}`);
  });
} catch (e) {
  failed = true;
  console.error(`not ok - ${e?.stack ?? e}`);
  if (s) await shot(s, "lock-failure.png").catch(() => {});
} finally {
  if (s) await s.quit().catch(() => {});
  driver?.kill();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(siteDir, { recursive: true, force: true });
  updates.close();
}
process.exit(failed ? 1 : 0);
