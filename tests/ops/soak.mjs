// Soak: memory and disk of Vigil over a long run (issue 16).
//
// Three processes, one after the other, each sampled every --sample-s seconds:
//   1. a blank Tauri window (examples/blank_window.rs): the same Tauri and
//      webview with no Vigil in it: the baseline for the app's memory;
//   2. the desktop app (core + webview: RSS summed over the whole process
//      tree, WebKit's web and network processes included) under Xvfb;
//   3. the headless gateway.
// The app and the gateway simulate a 16-bed ward at --speed N. For each: RSS
// over time, the database and WAL sizes, the number of chunks; then the RSS
// trend after warm-up (least-squares slope), the app's RSS beside the blank
// window's + 100 MiB, the largest WAL, and bytes per stored reading. The app's
// RSS is also split by process (core = the vigil process: Rust core, GTK and
// WebKit's UI side; web = WebKitWebProcess; net = WebKitNetworkProcess).
//
// The build profile matters: a debug vigil maps a ~190 MB binary (much of it
// resident) where the release one is ~45 MB. Vigil ships release builds, so
// `./dev bench soak` measures release builds of both the app and the blank
// window; `./dev test`'s short form runs the debug builds it already has and
// its app-vs-window line is informational. Each run prints the profile it
// measured (from the binaries' paths: .../release/... or .../debug/...).
//
//   node tests/ops/soak.mjs --bin <vigil> --blank <blank_window> [--minutes M] [--speed N] [--sample-s S]
//
// Defaults are the CI's short form (1.5 minutes each at 240x: 6 simulated
// hours). The full soak: --minutes 6 --speed 240 (one simulated day) and
// --minutes 60 --speed 1 (one real hour). Exits non-zero if a goal fails
// with --strict (the short form reports; growth over minutes is noise).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, statSync, writeFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rss } from "./proctree.mjs";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith("--")) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith("--") ? all[i + 1] : "true"]);
    return acc;
  }, []),
);
const bin = args.bin;
const blank = args.blank;
if (!bin || !blank) {
  console.error("usage: node soak.mjs --bin <vigil> --blank <blank_window> [--minutes M] [--speed N] [--sample-s S] [--strict]");
  process.exit(2);
}
const minutes = Number(args.minutes ?? 1.5);
const speed = Number(args.speed ?? 240);
const sampleS = Number(args["sample-s"] ?? 10);
const strict = args.strict === "true";
const PASSPHRASE = "soak-benchmark-passphrase";
const MiB = 1024 * 1024;

/** "release" or "debug", from where cargo put the binary; "unknown" elsewhere. */
function profile(path) {
  const m = /[/\\](release|debug)[/\\]/.exec(path);
  return m ? m[1] : "unknown";
}
const appProfile = profile(bin);
const blankProfile = profile(blank);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function size(path) {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function chunks(db) {
  try {
    return Number(
      execFileSync("python3", [
        "-c",
        "import sqlite3,sys; c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True, timeout=5); print(c.execute('select count(*) from chunks').fetchone()[0])",
        db,
      ]).toString(),
    );
  } catch {
    return NaN;
  }
}

function slope(xs, ys) {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

async function stop(child) {
  if (child.exitCode !== null) return;
  // The whole process group: xvfb-run, Xvfb and the app.
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {}
  for (let i = 0; i < 100 && child.exitCode === null; i++) await sleep(100);
  if (child.exitCode === null) {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {}
  }
}

/** Runs `cmd` for `seconds`, sampling memory (and the store in `dir`). */
async function run(label, cmd, cmdArgs, { dir, seconds, env }) {
  const child = spawn(cmd, cmdArgs, {
    detached: true,
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr = (stderr + d.toString()).slice(-20000);
  });
  const samples = [];
  const t0 = Date.now();
  while ((Date.now() - t0) / 1000 < seconds) {
    await sleep(sampleS * 1000);
    if (child.exitCode !== null) {
      console.error(`${label} exited early (${child.exitCode}):\n${stderr}`);
      process.exit(1);
    }
    const mem = rss(child.pid);
    const db = dir ? join(dir, "vigil.db") : null;
    samples.push({
      wallS: (Date.now() - t0) / 1000,
      rss: mem.bytes,
      names: mem.names,
      byName: mem.byName,
      webCpuS: mem.webCpuS,
      db: db ? size(db) : 0,
      wal: db ? size(db + "-wal") : 0,
      chunks: db ? chunks(db) : NaN,
    });
  }
  await stop(child);
  const stored = [...stderr.matchAll(/stored (\d+)/g)].map((m) => Number(m[1])).pop();
  return { label, samples, stored, stderr };
}

// Process names as /proc shows them (15 characters).
const PARTS = [
  ["core", /^(vigil|blank_window)$/],
  ["web", /^WebKitWebProces/],
  ["net", /^WebKitNetworkPr/],
];

function part(s, re) {
  let b = 0;
  for (const [name, bytes] of Object.entries(s.byName)) if (re.test(name)) b += bytes;
  return (b / MiB).toFixed(1);
}

function table(r) {
  console.log(`\n${r.label}: processes ${[...new Set(r.samples.flatMap((s) => s.names))].join(", ")}`);
  console.log("  wall s   sim h    RSS MiB   core MiB    web MiB    net MiB  web CPU s    DB MB   WAL MB   chunks");
  for (const s of r.samples) {
    console.log(
      `  ${s.wallS.toFixed(0).padStart(6)} ${((s.wallS * speed) / 3600).toFixed(2).padStart(7)} ${(s.rss / MiB).toFixed(1).padStart(10)} ${PARTS.map(([, re]) => part(s, re).padStart(10)).join(" ")} ${s.webCpuS.toFixed(0).padStart(10)} ${(s.db / 1e6).toFixed(2).padStart(8)} ${(s.wal / 1e6).toFixed(2).padStart(8)} ${String(s.chunks).padStart(8)}`,
    );
  }
}

/** RSS trend after warm-up (the first half: caches, SQLite's page cache and
 * the allocator fill during the first simulated hours), in MiB per simulated hour. */
function trend(r) {
  const warm = r.samples.slice(Math.floor(r.samples.length / 2));
  return slope(
    warm.map((s) => (s.wallS * speed) / 3600),
    warm.map((s) => s.rss / MiB),
  );
}

function ward(dir) {
  writeFileSync(join(dir, "site.json"), JSON.stringify({ beds: 16 }));
}

const seconds = minutes * 60;
console.log(`soak: ${minutes} min each at ${speed}x (${((seconds * speed) / 3600).toFixed(1)} simulated h), 16 beds, sample every ${sampleS} s`);
console.log(`profile: app ${appProfile} (${bin}), blank window ${blankProfile} (${blank})`);
if (appProfile !== blankProfile) console.log("!! the app and the blank window are different build profiles: the comparison is not like for like");
// The goal is the shipped (release) app's; a debug app's figure is informational.
const judged = appProfile === "release" && blankProfile === "release";
const xvfb = ["-a", "-s", "-screen 0 1280x800x24"];

const blankRun = await run("blank Tauri window (baseline)", "xvfb-run", [...xvfb, blank], {
  seconds: Math.max(30, sampleS * 3),
});
const appDir = mkdtempSync(join(tmpdir(), "vigil-soak-app-"));
ward(appDir);
const appRun = await run(
  "app (core + webview)",
  "xvfb-run",
  [...xvfb, bin, "--simulate", "ward", "--speed", String(speed), "--data-dir", appDir],
  { dir: appDir, seconds, env: { VIGIL_PASSPHRASE: PASSPHRASE, VIGIL_LOG: "warn" } },
);
const gwDir = mkdtempSync(join(tmpdir(), "vigil-soak-gw-"));
ward(gwDir);
const gwRun = await run(
  "gateway (headless)",
  bin,
  ["gateway", "--simulate", "ward", "--speed", String(speed), "--status-every", "5", "--data-dir", gwDir],
  { dir: gwDir, seconds, env: { VIGIL_PASSPHRASE: PASSPHRASE, VIGIL_LOG: "warn" } },
);

table(blankRun);
table(appRun);
table(gwRun);

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const blankMiB = median(blankRun.samples.map((s) => s.rss)) / MiB;
const appMiB = Math.max(...appRun.samples.map((s) => s.rss)) / MiB;
const results = [
  [
    `app RSS peak vs blank window + 100 MiB (${appProfile} builds${judged ? "" : "; informational: the goal is the release build's"})`,
    `${appMiB.toFixed(0)} MiB vs ${(blankMiB + 100).toFixed(0)} MiB (blank ${blankMiB.toFixed(0)} MiB)`,
    appMiB <= blankMiB + 100 ? true : judged ? false : null,
  ],
  ["app RSS trend after warm-up", `${trend(appRun).toFixed(2)} MiB per simulated h`, trend(appRun) < 1],
  ["gateway RSS trend after warm-up", `${trend(gwRun).toFixed(2)} MiB per simulated h`, trend(gwRun) < 1],
];
for (const r of [appRun, gwRun]) {
  const walMax = Math.max(...r.samples.map((s) => s.wal));
  results.push([`${r.label}: largest WAL`, `${(walMax / 1e6).toFixed(1)} MB`, walMax < 64e6]);
}
const last = gwRun.samples.at(-1);
if (gwRun.stored) {
  results.push(["gateway: database bytes per stored reading (incl. summaries)", `${(last.db / gwRun.stored).toFixed(2)} B (${gwRun.stored} readings)`, true]);
}
console.log("\n| measure | this run | goal met |\n|---|---|---|");
for (const [what, value, ok] of results) console.log(`| ${what} | ${value} | ${ok === null ? "no (not judged)" : ok ? "yes" : "NO"} |`);
for (const d of [appDir, gwDir]) if (existsSync(d)) rmSync(d, { recursive: true, force: true });
if (strict && results.some(([, , ok]) => ok === false)) process.exit(1);
