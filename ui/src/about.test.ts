import { describe, expect, it } from "vitest";
import { buildRows, checkText, installConfirmText } from "./about";
import type { AboutView } from "./contract";

const about: AboutView = {
  version: "0.1.0",
  commit: "0123456789ab",
  build_date: "2026-12-05",
  intended_use: "Decision support for trained clinical staff.",
  licence: "Apache-2.0",
  sbom: "vigil-sbom.cdx.json",
  update: { endpoint: null, may_install: false, monitored_beds: 0 },
};

describe("About", () => {
  it("names the commit and build date an installer matches against the SBOM", () => {
    const rows = Object.fromEntries(buildRows(about));
    expect(rows["Build"]).toBe("commit 0123456789ab, built 2026-12-05");
    expect(rows["Software bill of materials"]).toContain("vigil-sbom.cdx.json");
    expect(rows["Licence"]).toContain("Apache-2.0");
  });

  it("says updates are off when the site names no server (hospital IT decides)", () => {
    expect(Object.fromEntries(buildRows(about))["Updates"]).toMatch(/^off/);
    const on = { ...about, update: { ...about.update, endpoint: "https://updates.example/latest.json" } };
    expect(Object.fromEntries(buildRows(on))["Updates"]).toContain("https://updates.example/latest.json");
  });

  it("the install confirmation names how many beds and that monitoring stops during the restart", () => {
    expect(installConfirmText(0, "0.2.0")).toBeNull();
    const one = installConfirmText(1, "0.2.0")!;
    expect(one).toMatch(/^1 bed is being monitored/);
    expect(one).toContain("monitoring and alarms stop at that bed");
    const four = installConfirmText(4, "0.2.0")!;
    expect(four).toMatch(/^4 beds are being monitored/);
    expect(four).toContain("restarts");
  });

  it("reports a check", () => {
    expect(checkText({ current: "0.1.0", available: null, notes: null, pub_date: null, monitored_beds: 0 })).toBe("Vigil 0.1.0 is up to date.");
    expect(checkText({ current: "0.1.0", available: "0.2.0", notes: null, pub_date: null, monitored_beds: 2 })).toMatch(/0\.2\.0 is available/);
  });
});
