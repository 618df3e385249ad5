import { describe, expect, it } from "vitest";
import { MDC, displayUnit } from "./codes";
import { aboutRows, bondedText, identityText, deviceTrustText, formatAge, formatBattery, formatNumber, formatOffset, isLowBattery } from "./format";
import type { AppInfo } from "./contract";

describe("format", () => {
  it("formats numbers per code, never -0", () => {
    expect(formatNumber(97.4, MDC.SPO2)).toBe("97");
    expect(formatNumber(36.95, MDC.TEMP)).toBe("37.0");
    expect(formatNumber(-0.01, MDC.TEMP)).toBe("0.0");
    expect(formatNumber(Number.NaN, MDC.HR)).toBe("---");
    expect(formatNumber(Number.POSITIVE_INFINITY, MDC.HR)).toBe("---");
  });

  it("formats ages", () => {
    expect(formatAge(-5)).toBe("0 s");
    expect(formatAge(999)).toBe("0 s");
    expect(formatAge(42_000)).toBe("42 s");
    expect(formatAge(59_999)).toBe("59 s");
    expect(formatAge(60_000)).toBe("1 min");
    expect(formatAge(4 * 60_000 + 30_000)).toBe("4 min");
    expect(formatAge(2 * 3_600_000 + 5 * 60_000)).toBe("2 h 05 min");
    expect(formatAge(72 * 3_600_000)).toBe("3 d");
  });

  it("maps UCUM units", () => {
    expect(displayUnit("Cel")).toBe("°C");
    expect(displayUnit("[degF]")).toBe("°F");
    expect(displayUnit("mm[Hg]")).toBe("mmHg");
    expect(displayUnit("/min")).toBe("/min");
    expect(displayUnit("weird")).toBe("weird");
  });

  it("battery and offset", () => {
    expect(formatBattery(null)).toBe("");
    expect(formatBattery(19)).toBe("19%");
    expect(isLowBattery(19)).toBe(true);
    expect(isLowBattery(20)).toBe(false);
    expect(isLowBattery(null)).toBe(false);
    expect(formatOffset(null)).toBe("\u2014");
    expect(formatOffset(3)).toBe("+3 s");
    expect(formatOffset(-120)).toBe("\u22122 min");
  });
});

import { formatDeviceInfo } from "./format";
describe("formatDeviceInfo", () => {
  it("joins what the device reported", () => {
    expect(
      formatDeviceInfo({ manufacturer: "Polar Electro Oy", model: "H10", serial: "C0680226", firmware: "5.0.0" }),
    ).toBe("Polar Electro Oy H10 \u00b7 SN C0680226 \u00b7 FW 5.0.0");
  });
  it("is empty before Device Information is read", () => {
    expect(formatDeviceInfo({ manufacturer: null, model: null, serial: null, firmware: null })).toBe("");
    expect(formatDeviceInfo(undefined)).toBe("");
  });

  it("labels link security and refused data (issue 13)", () => {
    const d = { bonded: null as boolean | null, refused: null as "identity_changed" | "not_bonded" | null, foreign_values: 0 };
    expect(deviceTrustText(d)).toBe("");
    expect(deviceTrustText({ ...d, bonded: true })).toBe("");
    expect(deviceTrustText({ ...d, bonded: false })).toBe("not bonded");
    expect(deviceTrustText({ ...d, bonded: false, refused: "not_bonded" })).toBe("NOT BONDED \u2014 data refused");
    expect(deviceTrustText({ ...d, bonded: true, refused: "identity_changed", foreign_values: 3 })).toBe(
      "IDENTITY CHANGED \u2014 data refused \u00b7 3 foreign values dropped",
    );
    expect(deviceTrustText({ ...d, foreign_values: 1 })).toBe("1 foreign value dropped");
    expect(bondedText(true)).toBe("bonded");
    const none = { manufacturer: null, model: null, serial: null, hardware: null, firmware: null, software: null, system_id: null };
    expect(identityText(none)).toBe("no serial number");
    expect(identityText({ ...none, serial: "C0680226", model: "H10", manufacturer: "Polar" })).toBe("serial C0680226 \u00b7 model H10 \u00b7 Polar");
    expect(bondedText(false)).toBe("not bonded");
    expect(bondedText(null)).toBe("link security unknown");
  });
});

describe("aboutRows", () => {
  const info: AppInfo = {
    version: "0.1.0",
    mode: "simulated",
    scenario: "stable",
    key_source: "passphrase (VIGIL_PASSPHRASE)",
    data_dir: "/var/lib/vigil",
    store_recovered_from: null,
    store_rolled_back: null,
    site_files: [
      { role: "installer", path: "/etc/vigil/site.json", sha256: "ab".repeat(32), admin_only: true, sections: ["alarms", "fhir"] },
      { role: "local", path: "/var/lib/vigil/site.json", sha256: "cd".repeat(32), admin_only: false, sections: ["beds"] },
    ],
  };

  it("names each site file with its hash, who can change it and what was taken from it", () => {
    const rows = aboutRows(info);
    const installer = rows.find(([k]) => k === "Site configuration (installer)")!;
    expect(installer[1]).toContain("/etc/vigil/site.json");
    expect(installer[1]).toContain("sha256 abababababababab");
    expect(installer[1]).toContain("administrators only");
    expect(installer[1]).toContain("alarms, fhir");
    expect(installer[2]).toBe(`sha256 ${"ab".repeat(32)}`);
    const local = rows.find(([k]) => k === "Site configuration (data directory)")!;
    expect(local[1]).toContain("user-writable");
    expect(rows.find(([k]) => k === "Devices")![1]).toBe("SIMULATED (scenario: stable)");
  });

  it("says when there is no site file, and when the core cannot be reached", () => {
    expect(aboutRows({ ...info, site_files: [] }).some(([, v]) => v.includes("built-in defaults"))).toBe(true);
    expect(aboutRows(null)[0][1]).toMatch(/not reachable/);
  });
});
