// Web-process memory, one experiment at a time (issue 16): runs the desktop app
// under Xvfb on a simulated ward and prints, every 20 s, the RSS of the core,
// WebKit's web and network processes and the web process's CPU seconds.
// Nothing is judged: it is for comparing two runs that differ in one thing
// (a build, an environment variable such as JSC_logGC=1 or Malloc=1, the
// scenario). `./dev bench soak` is the measurement of record.
//
//   node tests/ops/webmem.mjs --bin <vigil> [--minutes 3] [--beds 16]
//        [--scenario ward] [--speed 240] [--label run] [NAME=VALUE ...]
//
// The web process's stderr (e.g. JSC_logGC output) goes to <label>.err in the
// current directory.
import { spawn } from "node:child_process";
import { mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { rss } from "./proctree.mjs";

const opts = { minutes: "3", beds: "16", scenario: "ward", speed: "240", label: "run" };
const env = { ...process.env, VIGIL_PASSPHRASE: "soak-benchmark-passphrase", VIGIL_LOG: "warn" };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i].startsWith("--")) opts[argv[i].slice(2)] = argv[++i];
  else {
    const eq = argv[i].indexOf("=");
    env[argv[i].slice(0, eq)] = argv[i].slice(eq + 1);
  }
}
if (!opts.bin) {
  console.error("usage: node tests/ops/webmem.mjs --bin <vigil> [--minutes M] [--beds N] [--scenario S] [--speed X] [--label L] [NAME=VALUE ...]");
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), "vigil-webmem-"));
writeFileSync(join(dir, "site.json"), JSON.stringify({ beds: Number(opts.beds) }));
const args = ["-a", "-s", "-screen 0 1280x800x24", opts.bin, "--simulate", opts.scenario, "--speed", opts.speed, "--data-dir", dir];
const child = spawn("xvfb-run", args, { detached: true, env, stdio: ["ignore", "ignore", openSync(`${opts.label}.err`, "w")] });
// /proc shows a process's name cut to 15 characters.
const coreName = basename(opts.bin).slice(0, 15);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
while ((Date.now() - t0) / 60000 < Number(opts.minutes)) {
  await sleep(20000);
  const m = rss(child.pid);
  const mib = { core: 0, web: 0, net: 0 };
  for (const [name, bytes] of Object.entries(m.byName)) {
    const part = /^WebKitWebProces/.test(name) ? "web" : /^WebKitNetworkPr/.test(name) ? "net" : name === coreName ? "core" : null;
    if (part) mib[part] += bytes / (1024 * 1024);
  }
  const t = ((Date.now() - t0) / 1000).toFixed(0);
  console.log(`${opts.label} t=${t}s core=${mib.core.toFixed(0)} web=${mib.web.toFixed(0)} net=${mib.net.toFixed(0)} MiB webcpu=${m.webCpuS.toFixed(0)}s`);
}
try {
  process.kill(-child.pid, "SIGTERM");
} catch {}
await sleep(2000);
try {
  process.kill(-child.pid, "SIGKILL");
} catch {}
rmSync(dir, { recursive: true, force: true });
