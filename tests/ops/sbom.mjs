// Joins the Rust SBOM (cargo-cyclonedx, the `vigil` package: every crate
// linked into the app and the gateway) and the UI's runtime npm packages
// (`npm sbom --omit dev`) into one CycloneDX 1.5 document describing the
// shipped application: what an installer needs to check a release.
//
//   node tests/ops/sbom.mjs <rust.cdx.json> <npm.cdx.json> <out.cdx.json>
//
// Exits non-zero if either input is missing, not CycloneDX, or empty.
import { readFileSync, writeFileSync } from "node:fs";
import { randomUUID } from "node:crypto";

const [rustPath, npmPath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node sbom.mjs <rust.cdx.json> <npm.cdx.json> <out.cdx.json>");
  process.exit(2);
}
const read = (p) => {
  const doc = JSON.parse(readFileSync(p, "utf8"));
  if (doc.bomFormat !== "CycloneDX" || !Array.isArray(doc.components) || doc.components.length === 0) {
    console.error(`${p}: not a CycloneDX document with components`);
    process.exit(1);
  }
  return doc;
};
const rust = read(rustPath);
const npm = read(npmPath);
const app = rust.metadata.component;
// The UI is a part of the application: its root becomes a component, and
// the application depends on it.
const ui = { ...npm.metadata.component, type: "library", name: "vigil-ui" };
const components = [...rust.components, ui, ...npm.components];
const refs = new Set();
for (const c of components) {
  if (refs.has(c["bom-ref"])) {
    console.error(`duplicate bom-ref ${c["bom-ref"]}`);
    process.exit(1);
  }
  refs.add(c["bom-ref"]);
}
const dependencies = [...(rust.dependencies ?? []), ...(npm.dependencies ?? [])].map((d) =>
  d.ref === app["bom-ref"] ? { ...d, dependsOn: [...(d.dependsOn ?? []), ui["bom-ref"]] } : d,
);
const out = {
  bomFormat: "CycloneDX",
  specVersion: "1.5",
  serialNumber: `urn:uuid:${randomUUID()}`,
  version: 1,
  metadata: {
    timestamp: new Date().toISOString(),
    tools: [...(rust.metadata.tools ?? []), ...(npm.metadata.tools ?? [])],
    component: app,
  },
  components,
  dependencies,
};
writeFileSync(outPath, JSON.stringify(out, null, 2) + "\n");
const cargo = rust.components.length;
console.log(`${outPath}: ${components.length} components (${cargo} Rust crates, ${npm.components.length + 1} npm packages)`);
