// Webview benchmark for `./dev bench alarms`: the real Vigil app (debug build,
// UI embedded, as ./dev test builds it) in WebKitGTK under Xvfb via tauri-driver,
// at real speed (--speed 1: the core's clock is the wall clock).
//
// It measures, in the page (window.vigilScreenTiming(), ui/src/timing.ts; times
// only, no values):
//   reading -> numeric on screen   a reading's received_ms -> end of the frame that drew it
//   alarm start -> alarm on screen an alarm's `since` -> end of the first frame that drew it
// Readings reach the page in the core's 250 ms batches; alarm changes are sent
// at once. The difference between the two p50s is what the batching costs, and
// alarm p50 well under reading p50 says alarms bypass it end to end.
//
// Scenario: 16 beds at 1 Hz with the site preset of the in-process benchmark
// (src-tauri/crates/bench/src/alarms.rs: HR limits 70–74, no condition delay),
// so the simulated noise starts alarms at every bed. Options:
//   --seconds N      measured time after warm-up (default 80)
//   --scenario NAME  simulated scenario (default stable)
//   --beds N         beds (default 16)
//   --site-preset    keep the narrow HR preset (default); --no-site-preset: the standard one
//   --min-alarms N   fail when fewer alarms were timed (default 60)
// After the measurement, 5 s of back-to-back animation frames show how often
// this webview can paint at all (context for the tails, not part of the figures).

import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { failAfter } from "./watchdog.mjs";
import { addUser, signIn } from "./users.mjs";
import { Builder, By, Capabilities, until } from "selenium-webdriver";

const { values: opt } = parseArgs({
  options: {
    seconds: { type: "string", default: "80" },
    scenario: { type: "string", default: "stable" },
    beds: { type: "string", default: "16" },
    "site-preset": { type: "boolean", default: true },
    "no-site-preset": { type: "boolean", default: false },
    "min-alarms": { type: "string", default: "60" },
  },
});
const SECONDS = Number(opt.seconds);
const BEDS = Number(opt.beds);
const MIN_ALARMS = Number(opt["min-alarms"]);
const PRESET = opt["site-preset"] && !opt["no-site-preset"];
const WARM_UP_MS = 5000;

const root = resolve(import.meta.dirname, "../..");
const app = process.env.VIGIL_APP ?? join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), "debug/vigil");
const out = join(root, "test-output/e2e");
mkdirSync(out, { recursive: true });
const dataDir = mkdtempSync(join(tmpdir(), "vigil-bench-alarms-"));
// The same preset as the in-process benchmark, as a site configuration.
if (PRESET) {
  writeFileSync(
    join(dataDir, "site.json"),
    JSON.stringify({
      alarms: { adult: { heart_rate: { low: 70, high: 74, priority_low: "medium", priority_high: "medium", delay_s: 0 } } },
    }),
  );
}

// The app reads its store key from here (no OS keychain under Xvfb); the site
// configuration from the data dir, not from a variable left in the environment.
process.env.VIGIL_PASSPHRASE = "bench-alarms-passphrase";
delete process.env.VIGIL_SITE_CONFIG;
// The installer's step: the nurse who watches the screen signs in (same data directory and key).
addUser(app, dataDir, { name: "e2e-nurse", role: "nurse", password: "e2e nurse password" });

// Not run.mjs's 4444/4445, ble.mjs's 4446/4447 or unlock.mjs's 4452/4453.
const driverPort = 4448;
const nativePort = 4449;
const driver = spawn("tauri-driver", ["--port", String(driverPort), "--native-port", String(nativePort)], {
  stdio: ["ignore", "inherit", "inherit"],
  detached: true, // its own process group: the watchdog stops everything it started
});
failAfter(SECONDS * 1000 + 180000, driver);
let session;
let failed = false;

async function waitForDriver() {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${driverPort}/status`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("tauri-driver did not start");
}

const fmt = (v) => (v === null || v === undefined ? "-" : v.toFixed(1));
function row(label, s) {
  return `${label.padEnd(40)} ${String(s.count).padStart(7)} ${fmt(s.p50).padStart(9)} ${fmt(s.p99).padStart(9)} ${fmt(s.max).padStart(9)}`;
}

try {
  await waitForDriver();
  const caps = new Capabilities();
  caps.setBrowserName("wry");
  const args = ["--data-dir", dataDir, "--simulate", opt.scenario, "--beds", String(BEDS), "--speed", "1"];
  caps.set("tauri:options", { application: app, args });
  session = await new Builder().withCapabilities(caps).usingServer(`http://127.0.0.1:${driverPort}/`).build();
  const beds = Array.from({ length: BEDS }, (_, i) => `bed-${i + 1}`);

  // Every bed shows a live number, then a short warm-up (layout, first alarms).
  await session.wait(until.elementLocated(By.css('[data-testid="sim-banner"]')), 20000);
  await session.wait(
    async () =>
      (await session.executeScript((b) => b.map((x) => document.querySelector(`[data-testid="hr-${x}"]`)?.textContent?.trim() ?? ""), beds)).every((t) =>
        /^\d+$/.test(t),
      ),
    60000,
    `not every one of ${BEDS} beds shows a HR`,
  );
  // Measured as a nurse sees it: signed in, patient details allowed.
  await signIn(session, { name: "e2e-nurse", role: "nurse", password: "e2e nurse password" });
  const hooks = await session.executeScript(() => typeof window.vigilTest?.resetScreenTiming === "function");
  if (!hooks) throw new Error("window.vigilTest.resetScreenTiming is missing: build with `tauri build --debug` (./dev does)");
  await new Promise((r) => setTimeout(r, WARM_UP_MS));
  await session.executeScript(() => window.vigilTest.resetScreenTiming());
  const before = await session.executeScript(() => window.vigilScreenTiming());

  console.log(`webview: ${args.slice(2).join(" ")}${PRESET ? ", site preset HR 70–74 no delay" : ""}; measuring ${SECONDS} s after ${WARM_UP_MS / 1000} s warm-up`);
  // Few WebDriver calls while measuring (each is a round trip into the page).
  const t0 = Date.now();
  while (Date.now() - t0 < SECONDS * 1000) {
    await new Promise((r) => setTimeout(r, Math.min(15000, SECONDS * 1000 - (Date.now() - t0))));
    const t = await session.executeScript(() => window.vigilScreenTiming());
    console.log(`   ${Math.round((Date.now() - t0) / 1000)} s: ${t.reading_to_screen_ms.count} readings, ${t.alarm_to_screen_ms.count} alarms on screen`);
  }
  const t = await session.executeScript(() => window.vigilScreenTiming());
  const load = loadavg()[0];
  await session.findElement(By.css('[data-testid="overview"]'));
  const png = await session.takeScreenshot();
  writeFileSync(join(out, "bench-alarms.png"), Buffer.from(png, "base64"));
  // Context: frames back to back for 5 s (after the measurement: this loop
  // itself keeps the webview painting). Each rendering update waits for the one
  // before, so the interval is how long one takes here, alarms flashing.
  const raf = await session.executeAsyncScript((done) => {
    const iv = [];
    let last = performance.now();
    const end = last + 5000;
    const f = () => {
      const n = performance.now();
      iv.push(n - last);
      last = n;
      if (n < end) requestAnimationFrame(f);
      else done(iv);
    };
    requestAnimationFrame(f);
  });
  raf.sort((x, y) => x - y);
  const q = (p) => raf[Math.min(raf.length - 1, Math.floor(p * raf.length))];

  const r = t.reading_to_screen_ms;
  const a = t.alarm_to_screen_ms;
  const updates = t.updates - before.updates;
  console.log();
  console.log(`Screen latency in the webview (WebKitGTK, Xvfb), ${BEDS} beds at --speed 1 for ${SECONDS} s, ${updates} updates, load average ${load.toFixed(1)} on ${availableParallelism()} CPUs:`);
  console.log(`${"".padEnd(40)} ${"count".padStart(7)} ${"p50 ms".padStart(9)} ${"p99 ms".padStart(9)} ${"max ms".padStart(9)}`);
  console.log(row("reading -> numeric on screen (batched)", r));
  console.log(row("alarm start -> alarm on screen", a));
  console.log(row("core sends update -> page has it", t.update_ipc_ms));
  console.log(row("page has update -> drawn (last 512)", { count: Math.min(updates, 512), ...t.to_screen_ms }));
  console.log(row("frame (render) time (last 512)", { count: Math.min(updates, 512), ...t.frame_ms }));
  console.log(row("context: back-to-back frame interval, 5 s", { count: raf.length, p50: q(0.5), p99: q(0.99), max: raf[raf.length - 1] }));
  const windowed = [r, a].some((s) => s.samples < s.count);
  if (windowed) console.log(`(percentiles over the last ${r.samples} readings / ${a.samples} alarms)`);
  if (r.p50 !== null && a.p50 !== null) {
    const cost = r.p50 - a.p50;
    console.log(`batching: reading p50 - alarm p50 = ${cost.toFixed(1)} ms (a reading waits up to 250 ms, ~125 ms on average, for the next batch)`);
    console.log(
      `alarms bypass the batching end to end: ${a.p50 < r.p50 / 2 ? "yes" : "NO"} (alarm p50 ${fmt(a.p50)} ms vs reading p50 ${fmt(r.p50)} ms)`,
    );
  }
  console.log("in-process (the table above, ./dev bench alarms): reading/alarm -> the UI channel; here: -> drawn in the webview.");
  if (a.count < MIN_ALARMS) {
    throw new Error(`only ${a.count} alarms timed (want >= ${MIN_ALARMS}): run longer (--seconds) or pick a scenario with more alarms`);
  }
  if (a.count < 100) console.log(`note: ${a.count} alarms: p99 is close to the maximum`);
} catch (e) {
  failed = true;
  console.error(`not ok - ${e?.stack ?? e}`);
  if (session) {
    const png = await session.takeScreenshot().catch(() => null);
    if (png) writeFileSync(join(out, "bench-alarms-failure.png"), Buffer.from(png, "base64"));
  }
} finally {
  if (session) await session.quit().catch(() => {});
  driver.kill();
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
