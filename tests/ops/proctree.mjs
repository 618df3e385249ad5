// Every process in the tree under a pid, and its memory, for the memory checks
// (tests/ops/soak.mjs, tests/ops/webmem.mjs, tests/e2e/memory.mjs): the app's WebKit
// processes are children of its core process.
import { readFileSync, readdirSync } from "node:fs";

/** `pid` and every process below it (children listed in /proc/<pid>/task/<tid>/children). */
export function tree(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks = [];
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue; // ended meanwhile
    }
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${out[i]}/task/${t}/children`, "utf8").split(/\s+/).filter(Boolean)) {
          out.push(Number(c));
        }
      } catch {}
    }
  }
  return out;
}

/**
 * RSS of a process tree (Xvfb and shell wrappers left out): total bytes, by
 * process name (as /proc shows it, 15 characters), and the WebKit web
 * process's CPU seconds so far.
 */
export function rss(pid) {
  let total = 0;
  let webCpuS = 0;
  const names = new Set();
  const byName = {};
  for (const p of tree(pid)) {
    try {
      const status = readFileSync(`/proc/${p}/status`, "utf8");
      const name = /Name:\s+(\S+)/.exec(status)?.[1];
      if (!name || /^(xvfb-run|Xvfb|sh|bash|xauth)$/.test(name)) continue;
      const bytes = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
      total += bytes;
      byName[name] = (byName[name] ?? 0) + bytes;
      // The web process's CPU time so far (utime + stime, /proc/<pid>/stat fields 14-15):
      // its memory grows with how much it draws, and how much it draws depends on how
      // much CPU it got, so a run's growth is read beside it.
      if (/^WebKitWebProces/.test(name)) {
        const f = readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1].split(" ");
        webCpuS += (Number(f[11]) + Number(f[12])) / 100;
      }
      names.add(name);
    } catch {}
  }
  return { bytes: total, names: [...names], byName, webCpuS };
}
