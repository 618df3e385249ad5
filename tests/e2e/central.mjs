// End-to-end (issue 17): the central station. Two real `vigil gateway --simulate ward
// --feed 127.0.0.1:0` processes (each its own store, users and feed token) and the real
// app opened with `vigil central` in WebKitGTK, its feeds from the installer's site file.
// The page shows the beds of both gateways live; the central user signs in at both with
// one form; an alarm acknowledged from the central station comes back acknowledged in
// the bedside's own alarm state (and in the bedside's alarm log, as "<user> (central)");
// a gateway that stops is "FEED LOST" on every one of its beds within the timeout.
// Screenshots: test-output/e2e/central.png, central-lost.png.

import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { app, shot, startDriver, startSession, step } from "./harness.mjs";
import { E2E_ADMIN, E2E_ADMIN_PASSWORD, addUser } from "./users.mjs";
import { By } from "selenium-webdriver";

const NURSE = { name: "central-nurse", role: "nurse", password: "central nurse password" };
const PASSPHRASE = "central-e2e-passphrase";
/** The feed's silence timeout (ui/src/central/station.ts FEED_LOST_AFTER_MS) and the margin we allow on a loaded machine. */
const FEED_LOST_AFTER_MS = 3000;
const LOST_BOUND_MS = FEED_LOST_AFTER_MS + 2000;

const dirs = [];
const tmp = (p) => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};
const procs = [];

/** A gateway with its own store, user and token; resolves with its feed URL once it listens. */
async function startGateway(label, token) {
  const dataDir = tmp(`vigil-central-gw-${label}-`);
  const env = { ...process.env, VIGIL_PASSPHRASE: PASSPHRASE, VIGIL_FEED_TOKEN: token };
  addUser(app, dataDir, { ...NURSE, env });
  // Ward at 10x: bed 2 deteriorates and bed 3 desaturates, so alarms come within a minute.
  const gw = spawn(app, ["gateway", "--data-dir", dataDir, "--simulate", "ward", "--speed", "10", "--feed", "127.0.0.1:0", "--status-every", "3600"], {
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  procs.push(gw);
  let log = "";
  const url = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`gateway ${label}: no feed address within 60 s:\n${log}`)), 60000);
    gw.stderr.on("data", (d) => {
      log += d;
      // The feed says where it listens: "… ws://127.0.0.1:<port>/feed …".
      const m = /ws:\/\/127\.0\.0\.1:(\d+)/.exec(log);
      if (m) {
        clearTimeout(t);
        resolve(`ws://127.0.0.1:${m[1]}/feed`);
      }
    });
    gw.on("exit", (c) => reject(new Error(`gateway ${label} exited ${c}:\n${log}`)));
  });
  return { gw, dataDir, url, env };
}

/** Every tile: station, bed, live/lost, banner, HR. */
function tiles(s) {
  return s.executeScript(() =>
    [...document.querySelectorAll('[data-testid="c-tile"]')].map((el) => ({
      station: el.getAttribute("data-station"),
      bed: el.getAttribute("data-bed"),
      live: el.getAttribute("data-live") === "true",
      lost: el.getAttribute("data-lost") === "true",
      banner: el.querySelector('[data-testid="c-feed-state"]')?.textContent ?? "",
      hr: el.querySelector('[data-testid="c-hr"]')?.textContent ?? "",
    })),
  );
}

/** The cross-station alarm list. */
function alarmRows(s) {
  return s.executeScript(() =>
    [...document.querySelectorAll('[data-testid="c-alarms"] [data-testid="c-alarm"]')].map((el) => ({
      key: el.getAttribute("data-key"),
      priority: el.getAttribute("data-priority"),
      acknowledged: el.getAttribute("data-acknowledged") === "true",
      text: el.textContent,
      canAck: !!el.querySelector('[data-testid="c-ack"]'),
    })),
  );
}

const results = (s) => s.executeScript(() => [...document.querySelectorAll('[data-testid="c-result"]')].map((e) => e.textContent));

const port = 4492;
let driver;
let s;
let failed = false;
const figures = {};

try {
  const a = await startGateway("a", "tok-ward-a.1");
  const b = await startGateway("b", "tok-ward-b.2");
  // The installer's file (root-owned directory): which feeds the central station watches.
  const siteDir = tmp("vigil-central-site-");
  writeFileSync(
    join(siteDir, "site.json"),
    JSON.stringify({
      central: {
        feeds: [
          { name: "Ward A", url: a.url, token_env: "VIGIL_FEED_TOKEN_A" },
          { name: "Ward B", url: b.url, token_env: "VIGIL_FEED_TOKEN_B" },
        ],
      },
    }),
  );
  const centralDir = tmp("vigil-central-app-");
  const env = {
    ...process.env,
    VIGIL_SITE_CONFIG: join(siteDir, "site.json"),
    VIGIL_FEED_TOKEN_A: "tok-ward-a.1",
    VIGIL_FEED_TOKEN_B: "tok-ward-b.2",
  };
  delete env.VIGIL_PASSPHRASE; // the central station opens no store
  driver = await startDriver(port, env, 300000);
  s = await startSession(port, ["central", "--data-dir", centralDir]);

  await step("[central] beds of both gateways live, with numerics", async () => {
    const t0 = Date.now();
    await s.wait(
      async () => {
        const t = await tiles(s);
        const live = (st) => t.filter((x) => x.station === st && x.live && /^\d+$/.test(x.hr));
        return live("Ward A").length >= 2 && live("Ward B").length >= 2;
      },
      30000,
      "both stations' beds live",
    );
    figures.first_live_ms = Date.now() - t0;
    const t = await tiles(s);
    console.log(`   ${t.length} tiles: ${[...new Set(t.map((x) => x.station))].join(", ")}; live after ${figures.first_live_ms} ms`);
    assert.ok(t.every((x) => !x.lost), "no station lost");
    assert.equal(await s.executeScript(() => document.title), "Vigil — central station");
  });

  await step("[central] acknowledge before signing in is refused, nothing sent", async () => {
    await s.wait(async () => (await alarmRows(s)).some((r) => r.canAck), 90000, "an alarm to acknowledge");
    await s.findElement(By.css('[data-testid="c-alarms"] [data-testid="c-ack"]')).click();
    await s.wait(async () => (await results(s)).some((r) => r.includes("sign in at the central station first")), 5000, "refusal shown");
  });

  await step("[central] one sign-in form signs in at every station, results per station", async () => {
    await s.findElement(By.css('[data-testid="c-user"]')).sendKeys(NURSE.name);
    await s.findElement(By.css('[data-testid="c-password"]')).sendKeys("wrong password here");
    await s.findElement(By.css('[data-testid="c-sign-in"]')).click();
    await s.wait(async () => (await results(s)).filter((r) => r.includes("sign-in failed")).length === 2, 10000, "two failures reported");
    await s.findElement(By.css('[data-testid="c-user"]')).clear();
    await s.findElement(By.css('[data-testid="c-user"]')).sendKeys(NURSE.name);
    await s.findElement(By.css('[data-testid="c-password"]')).sendKeys(NURSE.password);
    await s.findElement(By.css('[data-testid="c-sign-in"]')).click();
    await s.wait(
      async () => {
        const r = await results(s);
        return r.some((x) => x.includes(`Ward A: signed in as ${NURSE.name}`)) && r.some((x) => x.includes(`Ward B: signed in as ${NURSE.name}`));
      },
      10000,
      "signed in at both",
    );
  });

  await step("[central] an alarm acknowledged at the central station comes back acknowledged in the bedside's state", async () => {
    // One of Ward A's (station 0), whose log is read at the end.
    await s.wait(async () => (await alarmRows(s)).some((r) => r.canAck && !r.acknowledged && r.key.startsWith("0:")), 90000, "an alarm at Ward A");
    const before = (await alarmRows(s)).find((r) => r.canAck && !r.acknowledged && r.key.startsWith("0:"));
    const t0 = Date.now();
    await s.findElement(By.css(`[data-testid="c-alarms"] [data-key="${before.key}"] [data-testid="c-ack"]`)).click();
    await s.wait(async () => (await results(s)).some((r) => /acknowledged [1-9]/.test(r)), 10000, "acknowledge result");
    await s.wait(async () => (await alarmRows(s)).find((r) => r.key === before.key)?.acknowledged === true, 10000, "acknowledged in the next alarm state");
    figures.ack_round_trip_ms = Date.now() - t0;
    const row = (await alarmRows(s)).find((r) => r.key === before.key);
    console.log(`   ${before.key}: "${row.text.trim()}" after ${figures.ack_round_trip_ms} ms`);
    await shot(s, "central.png");
    figures.acked = before.key;
  });

  await step("[central] a stopped gateway is FEED LOST on every one of its beds within the timeout", async () => {
    const t0 = Date.now();
    b.gw.kill("SIGKILL"); // no goodbye: silence, as a pulled network cable
    await s.wait(
      async () => {
        const t = await tiles(s);
        const wb = t.filter((x) => x.station === "Ward B");
        return wb.length > 0 && wb.every((x) => x.lost && !x.live && /^FEED LOST — station Ward B, since \d\d:\d\d:\d\d$/.test(x.banner));
      },
      LOST_BOUND_MS + 5000,
      "Ward B lost on every bed",
    );
    figures.lost_shown_ms = Date.now() - t0;
    const t = await tiles(s);
    assert.ok(t.filter((x) => x.station === "Ward A").every((x) => x.live && !x.lost), "Ward A still live");
    const lostRows = (await alarmRows(s)).filter((r) => r.text.includes("FEED LOST"));
    assert.equal(lostRows.length, t.filter((x) => x.station === "Ward B").length, "a lost-feed alarm per bed");
    assert.ok(lostRows.every((r) => r.priority === "high"));
    console.log(`   shown after ${figures.lost_shown_ms} ms (bound ${LOST_BOUND_MS} ms)`);
    assert.ok(figures.lost_shown_ms <= LOST_BOUND_MS, `lost after ${figures.lost_shown_ms} ms`);
    await shot(s, "central-lost.png");
  });

  await step("[central] the bedside's alarm log records the acknowledgement as '<user> (central)'", async () => {
    a.gw.kill("SIGTERM");
    await new Promise((r) => a.gw.on("exit", r));
    const csv = execFileSync(app, ["alarms", "export", "--events", "--data-dir", a.dataDir], {
      env: { ...a.env, VIGIL_USER: E2E_ADMIN, VIGIL_USER_PASSWORD: E2E_ADMIN_PASSWORD },
    }).toString();
    const acks = csv.split("\n").filter((l) => /acknowledged/i.test(l) && l.includes(`${NURSE.name} (central)`));
    assert.ok(acks.length >= 1, `no central acknowledgement in Ward A's log (${csv.split("\n").length} lines)`);
    console.log(`   Ward A's log: ${acks.length} acknowledgement(s) by ${NURSE.name} (central)`);
  });
  console.log(`figures: ${JSON.stringify(figures)}`);
} catch (e) {
  failed = true;
  console.error(`not ok - ${e?.stack ?? e}`);
  if (s) await shot(s, "central-failure.png").catch(() => {});
} finally {
  if (s) await s.quit().catch(() => {});
  driver?.kill();
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
