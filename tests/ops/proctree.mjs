// Every process in the tree under a pid, for the memory checks (tests/ops/soak.mjs,
// tests/e2e/memory.mjs): the app's WebKit processes are children of its core process.
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
