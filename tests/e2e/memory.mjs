// End-to-end, the webview's memory (issue 16 soak): 16 beds of the simulated
// ward at 240x for ~40 s in the real app. A monitor runs for weeks, so what the
// page holds must not grow with the updates it has shown: the DOM node count
// and every UI structure (window.vigilTest.sizes(), counts only) stay bounded,
// and the updates reach the page without a script per message (a Tauri Channel
// evals one, which WebKitGTK's web process keeps: src-tauri/src/feed.rs). The
// web process's RSS is printed beside them, for the record (CI machines vary
// too much to hold it to a number; ./dev bench soak does).
//
// Then the transport alone: with drawing stopped (window.vigilTest.freezeScreen)
// and the updates still pulled and applied for 30 s, the web process must not
// grow. Measured (issue 16): its growth follows drawing, not the updates' path
// (frozen: flat within GC noise of +-40 MiB; a Channel's script per message
// grew it ~30 MiB/s), so this catches a transport that keeps memory per message.
//
//   xvfb-run -a -s "-screen 0 1280x800x24" node tests/e2e/memory.mjs
//   (SPEED=1 SECS=120 for the real-time picture)

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tree } from "../ops/proctree.mjs";
import { startDriver, startSession, step } from "./harness.mjs";

const speed = process.env.SPEED ?? "240";
const secs = Number(process.env.SECS ?? 40);
const port = Number(process.env.PORT ?? 4760);
const dataDir = mkdtempSync(join(tmpdir(), "vigil-e2e-memory-"));
writeFileSync(join(dataDir, "site.json"), JSON.stringify({ beds: 16 }));
delete process.env.VIGIL_SITE_CONFIG;
process.env.VIGIL_PASSPHRASE = "e2e-memory-passphrase";
process.env.VIGIL_LOG = "error";


/** RSS in MiB of the driver's WebKitWebProcess (the page's process), null if not found. */
function webProcessMiB(pid) {
  for (const p of tree(pid)) {
    try {
      const status = readFileSync(`/proc/${p}/status`, "utf8");
      if (/Name:\s+WebKitWebProces/.test(status)) return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
    } catch {}
  }
  return null;
}

const driver = await startDriver(port, process.env, (secs + 160) * 1000);
const session = await startSession(port, ["--data-dir", dataDir, "--simulate", "ward", "--speed", speed]);
// null until the page has started (its test hooks are set once the screen is up; a slow
// first load under a busy CI machine must wait, not fail).
const look = () =>
  session.executeScript(() =>
    window.vigilTest && window.vigilScreenTiming
      ? { sizes: window.vigilTest.sizes(), updates: window.vigilScreenTiming().updates }
      : null,
  );

const samples = [];
await step(`[memory] 16 beds at ${speed}x for ${secs} s: the page's DOM and UI state stay bounded`, async () => {
  await session.wait(async () => (await look())?.sizes.beds === 16, 60000, "16 beds not shown");
  const t0 = Date.now();
  while (Date.now() - t0 < secs * 1000) {
    await new Promise((r) => setTimeout(r, 5000));
    const s = await look();
    samples.push({ s: Math.round((Date.now() - t0) / 1000), rss: webProcessMiB(driver.pid), ...s });
    console.log(`  ${samples.at(-1).s} s: web process ${samples.at(-1).rss} MiB, updates ${s.updates}, ${JSON.stringify(s.sizes)}`);
  }
  const first = samples[0].sizes;
  for (const { sizes } of samples) {
    // The same beds, devices and shown codes: only alarms (a few per bed) and
    // alarm rows (at most 3 per tile and their controls) come and go.
    assert.ok(sizes.domNodes <= first.domNodes + 16 * 40, `DOM grew: ${first.domNodes} -> ${sizes.domNodes}`);
    assert.ok(sizes.latest <= 16 * 16, `latest values: ${sizes.latest}`);
    assert.ok(sizes.devices <= 16 * 8, `devices: ${sizes.devices}`);
    assert.ok(sizes.buffered <= 40, `buffered updates: ${sizes.buffered}`);
    assert.ok(sizes.timingSamples <= 2 * 512, `timing samples: ${sizes.timingSamples}`);
    assert.ok(sizes.latencyPending <= 2 * 4096, `latency backlog: ${sizes.latencyPending}`);
    assert.ok(sizes.latencyKnownAlarms <= Math.max(sizes.alarms, 16 * 20), `known alarm ids: ${sizes.latencyKnownAlarms}`);
  }
  assert.ok(samples.at(-1).updates > samples[0].updates, "no live updates arrived");
});

await step("[memory] updates keep arriving with drawing stopped: the web process does not grow with them", async () => {
  await session.executeScript(() => window.vigilTest.freezeScreen(true));
  // Median of three readings a second apart: JavaScriptCore's collections swing RSS by tens of MiB.
  const settled = async () => {
    const v = [];
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      v.push(webProcessMiB(driver.pid));
    }
    return v.sort((a, b) => a - b)[1];
  };
  const before = await settled();
  const u0 = (await look()).updates;
  await new Promise((r) => setTimeout(r, 30000));
  const after = await settled();
  const u1 = (await look()).updates;
  await session.executeScript(() => window.vigilTest.freezeScreen(false));
  console.log(`  frozen 30 s: web process ${before} -> ${after} MiB over ${u1 - u0} updates`);
  assert.ok(u1 > u0, "no updates arrived while drawing was stopped");
  assert.ok(after - before <= 80, `the web process grew ${after - before} MiB in 30 s of updates without drawing`);
});

await session.quit().catch(() => {});
try {
  process.kill(-driver.pid);
} catch {}
rmSync(dataDir, { recursive: true, force: true });
process.exit(0);
