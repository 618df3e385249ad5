// Pure text formatting for the screen. No DOM, no clocks: callers pass times in.

import type { AppInfo, DeviceInfoView, ReadingView } from "./contract";
import { decimalsFor } from "./codes";

/** The placeholder for "no number to show". The only non-numeric text a value element ever holds. */
export const NO_VALUE = "---";

export function formatNumber(value: number, mdc: number): string {
  if (!Number.isFinite(value)) return NO_VALUE;
  const d = decimalsFor(mdc);
  const s = value.toFixed(d);
  // Never show "-0" / "-0.0".
  return Object.is(Number(s), -0) ? (0).toFixed(d) : s;
}

/** Text for an IEEE 11073 special value. */
export function specialText(special: NonNullable<ReadingView["special"]>): string {
  switch (special) {
    case "nan":
      return "NaN (invalid)";
    case "nres":
      return "not at resolution";
    case "+inf":
      return "+INF (above range)";
    case "-inf":
      return "\u2212INF (below range)";
    case "reserved":
      return "reserved value";
    default:
      return String(special);
  }
}

/** Age as "0 s", "42 s", "4 min", "2 h 05 min", "3 d". Negative ages count as 0. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${String(m % 60).padStart(2, "0")} min`;
  return `${Math.floor(h / 24)} d`;
}

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/** Local wall-clock time "HH:MM" of an epoch-ms instant. */
export function formatHm(epochMs: number): string {
  const d = new Date(epochMs);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/** Local wall-clock time "HH:MM:SS". */
export function formatHms(epochMs: number): string {
  const d = new Date(epochMs);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** Local date and time "YYYY-MM-DD HH:MM:SS" (24 h, the ward's wall clock). */
export function formatDateTime(epochMs: number): string {
  const d = new Date(epochMs);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${formatHms(epochMs)}`;
}

/** Device clock offset "+3 s" / "-120 s" / "—". */
export function formatOffset(s: number | null): string {
  if (s === null) return "\u2014";
  if (s === 0) return "0 s";
  return `${s > 0 ? "+" : "\u2212"}${formatAge(Math.abs(s) * 1000)}`;
}

export function formatBattery(b: number | null): string {
  return b === null ? "" : `${Math.round(b)}%`;
}

export const LOW_BATTERY_PERCENT = 20;

export function isLowBattery(b: number | null): boolean {
  return b !== null && b < LOW_BATTERY_PERCENT;
}

export function linkStateText(state: string): string {
  switch (state) {
    case "adapter_off":
      return "adapter off";
    default:
      return state;
  }
}

export function categoryText(c: string): string {
  switch (c) {
    case "adult":
      return "Adult";
    case "paediatric":
      return "Paediatric";
    case "neonatal":
      return "Neonatal";
    default:
      return c;
  }
}

/** Signal strength bars 0–4 from RSSI (dBm); null = unknown = 0 bars. */
export function rssiBars(rssi: number | null): number {
  if (rssi === null || !Number.isFinite(rssi)) return 0;
  if (rssi >= -60) return 4;
  if (rssi >= -70) return 3;
  if (rssi >= -80) return 2;
  if (rssi >= -90) return 1;
  return 0;
}

/** "▮▮▮▯ −67 dBm" (bars as text so they survive without colour). */
export function rssiText(rssi: number | null): string {
  const n = rssiBars(rssi);
  const bars = "\u25AE".repeat(n) + "\u25AF".repeat(4 - n);
  return rssi === null || !Number.isFinite(rssi) ? `${bars} \u2014 dBm` : `${bars} ${rssi < 0 ? "\u2212" : ""}${Math.abs(Math.round(rssi))} dBm`;
}

const KIND_TEXT: Record<string, string> = {
  heart_rate_strap: "heart rate",
  pulse_oximeter: "SpO2 + pulse",
  thermometer: "temperature",
  blood_pressure_cuff: "blood pressure",
  weight_scale: "weight",
  glucose_meter: "glucose",
  respiration_sensor: "respiration",
};

/** What a device kind measures, for the scan list. */
export function kindText(kind: string): string {
  return KIND_TEXT[kind] ?? kind.replace(/_/g, " ");
}

/** "Polar Electro Oy H10 · SN C0680226 · FW 5.0.0", or "" before Device Information is read. */
export function formatDeviceInfo(i: { manufacturer: string | null; model: string | null; serial: string | null; firmware: string | null } | null | undefined): string {
  if (!i) return "";
  const name = [i.manufacturer, i.model].filter(Boolean).join(" ");
  return [name, i.serial ? `SN ${i.serial}` : "", i.firmware ? `FW ${i.firmware}` : ""].filter(Boolean).join(" \u00b7 ");
}

/**
 * What the device's link security and trust say (core::trust, issue 13): "IDENTITY CHANGED" and
 * "NOT BONDED" when its data is refused, "not bonded" when an unbonded link is taken (never trusted
 * silently), and how many values outside its kind it sent. "" when there is nothing to say
 * (bonded, or unknown: simulated devices, platforms that do not tell).
 */
export function deviceTrustText(d: {
  bonded: boolean | null;
  refused: "identity_changed" | "not_bonded" | null;
  foreign_values: number | bigint;
}): string {
  const parts: string[] = [];
  if (d.refused === "identity_changed") parts.push("IDENTITY CHANGED \u2014 data refused");
  else if (d.refused === "not_bonded") parts.push("NOT BONDED \u2014 data refused");
  else if (d.bonded === false) parts.push("not bonded");
  const foreign = Number(d.foreign_values);
  if (foreign > 0) parts.push(`${foreign} foreign value${foreign === 1 ? "" : "s"} dropped`);
  return parts.join(" \u00b7 ");
}

/** Link security as the Add-device list shows it. */
export function bondedText(bonded: boolean | null): string {
  return bonded === true ? "bonded" : bonded === false ? "not bonded" : "link security unknown";
}

/**
 * What a scanned device says about itself (DIS), for the Add-device list: the serial
 * first (it is on the device's label), then model and maker. Values come from any
 * device in radio range: the caller puts them in as text, never as markup.
 */
export function identityText(info: DeviceInfoView): string {
  const parts = [
    info.serial ? `serial ${info.serial}` : "no serial number",
    info.model ? `model ${info.model}` : null,
    info.manufacturer,
    info.system_id ? `System ID ${info.system_id}` : null,
  ].filter((p): p is string => !!p);
  return parts.join(" \u00b7 ");
}

/**
 * The About panel's rows: [label, text, tooltip?]. Each site configuration file with its
 * SHA-256 (first 16 hex digits shown, all in the tooltip), whether only administrators can
 * change it, and what was taken from it: an installer can tell which version is in use.
 */
export function aboutRows(info: AppInfo | null): [string, string, string?][] {
  if (!info) return [["Monitor core", "not reachable: nothing below can be confirmed"]];
  const rows: [string, string, string?][] = [
    ["Version", info.version],
    ["Devices", info.mode === "simulated" ? `SIMULATED${info.scenario ? ` (scenario: ${info.scenario})` : ""}` : "real (Bluetooth)"],
    ["Store key", info.key_source],
    ["Data directory", info.data_dir],
  ];
  if (info.site_files.length === 0) rows.push(["Site configuration", "none: built-in defaults"]);
  for (const f of info.site_files) {
    const role = f.role === "installer" ? "Site configuration (installer)" : "Site configuration (data directory)";
    const who = f.admin_only ? "administrators only" : "user-writable: workstation settings only";
    const taken = f.sections.length ? f.sections.join(", ") : "nothing taken";
    rows.push([role, `${f.path} \u2014 sha256 ${f.sha256.slice(0, 16)}\u2026 \u2014 ${who} \u2014 ${taken}`, `sha256 ${f.sha256}`]);
  }
  return rows;
}
