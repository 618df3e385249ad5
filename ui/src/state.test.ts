import { describe, expect, it } from "vitest";
import type { BedView, DeviceView, ReadingView, WardSnapshot, WardUpdate } from "./contract";
import { MDC } from "./codes";
import {
  NO_DATA_AFTER_MS,
  applyBufferedUpdate,
  applySnapshot,
  applyUpdate,
  bedDevices,
  coreNow,
  createState,
  frameContext,
  heartRateModel,
  isNoData,
  isReadingStale,
  latestReading,
  nibpModel,
  numericModel,
  setAdmission,
  temperatureModel,
} from "./state";

const T0 = 1_700_000_000_000; // core epoch ms at the snapshot
const P0 = 10_000; // performance.now() at the snapshot

function reading(p: Partial<ReadingView> & { mdc: number }): ReadingView {
  return {
    bed: "bed-1",
    device: "strap-1",
    value: 72,
    special: null,
    unit: "/min",
    received_ms: T0,
    device_time: null,
    stale_after_ms: 5000,
    source: "simulated",
    quality: "valid",
    flags: [],
    admission: null,
    ...p,
  };
}

function device(p: Partial<DeviceView> = {}): DeviceView {
  return {
    bed: "bed-1",
    device: "strap-1",
    kind: "heart_rate_strap",
    label: "Heart rate strap",
    state: "receiving",
    battery: 80,
    technical: null,
    source: "simulated",
    clock_offset_s: null,
    last_data_ms: T0,
    expected_interval_ms: 1000,
    info: { manufacturer: null, model: null, serial: null, hardware: null, firmware: null, software: null, system_id: null },
    bonded: null,
    refused: null,
    foreign_values: 0,
    refused_values: 0,
    identity_pinned: false,
    ...p,
  };
}

const BEDS: BedView[] = [
  { bed: "bed-1", label: "Bed 1", admission: null },
  { bed: "bed-2", label: "Bed 2", admission: null },
];

function snapshot(p: Partial<WardSnapshot> = {}): WardSnapshot {
  return { now_ms: T0, beds: BEDS, devices: [device()], latest: [reading({ mdc: MDC.HR })], alarms: [], news2: [], ...p };
}

function update(p: Partial<WardUpdate> = {}): WardUpdate {
  return { now_ms: T0 + 250, readings: [], devices: [], beds: null, alarms: [], news2: [], ...p };
}

function loaded(snap: WardSnapshot = snapshot()) {
  const s = createState(0);
  applySnapshot(s, snap, P0);
  return s;
}

describe("applying snapshots and updates", () => {
  it("a snapshot replaces everything", () => {
    const s = loaded();
    expect(s.beds.map((b) => b.bed)).toEqual(["bed-1", "bed-2"]);
    expect(latestReading(s, "bed-1", MDC.HR)?.value).toBe(72);
    expect(bedDevices(s, "bed-1")).toHaveLength(1);

    applySnapshot(s, snapshot({ beds: [BEDS[1]], devices: [], latest: [] }), P0 + 100);
    expect(s.beds.map((b) => b.bed)).toEqual(["bed-2"]);
    expect(latestReading(s, "bed-1", MDC.HR)).toBeUndefined();
    expect(bedDevices(s, "bed-1")).toHaveLength(0);
  });

  it("keeps the latest reading per bed and mdc", () => {
    const s = loaded();
    applyUpdate(
      s,
      update({
        readings: [
          reading({ mdc: MDC.HR, value: 80, received_ms: T0 + 100 }),
          reading({ mdc: MDC.HR, value: 81, received_ms: T0 + 200 }),
          reading({ mdc: MDC.HR, bed: "bed-2", value: 60, received_ms: T0 + 150 }),
          reading({ mdc: MDC.SPO2, value: 97, unit: "%", device: "ox-1", received_ms: T0 + 150 }),
        ],
      }),
      P0 + 250,
    );
    expect(latestReading(s, "bed-1", MDC.HR)?.value).toBe(81);
    expect(latestReading(s, "bed-2", MDC.HR)?.value).toBe(60);
    expect(latestReading(s, "bed-1", MDC.SPO2)?.value).toBe(97);
  });

  it("an out-of-order older reading never replaces a newer one", () => {
    const s = loaded();
    applyUpdate(s, update({ readings: [reading({ mdc: MDC.HR, value: 90, received_ms: T0 + 500 })] }), P0 + 250);
    applyUpdate(s, update({ now_ms: T0 + 500, readings: [reading({ mdc: MDC.HR, value: 50, received_ms: T0 + 100 })] }), P0 + 500);
    expect(latestReading(s, "bed-1", MDC.HR)?.value).toBe(90);
  });

  it("updates devices, and a device that moves bed leaves the old one", () => {
    const s = loaded();
    applyUpdate(s, update({ devices: [device({ battery: 15 })] }), P0 + 250);
    expect(bedDevices(s, "bed-1")[0].battery).toBe(15);
    applyUpdate(s, update({ devices: [device({ bed: "bed-2" })] }), P0 + 500);
    expect(bedDevices(s, "bed-1")).toHaveLength(0);
    expect(bedDevices(s, "bed-2")).toHaveLength(1);
  });

  it("orders devices by kind then id", () => {
    const s = loaded(
      snapshot({
        devices: [
          device({ device: "t", kind: "thermometer" }),
          device({ device: "ox-b", kind: "pulse_oximeter" }),
          device({ device: "ox-a", kind: "pulse_oximeter" }),
          device({ device: "h", kind: "heart_rate_strap" }),
          // A kind from a newer core than this screen knows sorts last.
          device({ device: "z", kind: "something_new" as unknown as DeviceView["kind"] }),
        ],
      }),
    );
    expect(bedDevices(s, "bed-1").map((d) => d.device)).toEqual(["h", "ox-a", "ox-b", "t", "z"]);
  });

  it("replaces beds only when the update carries them, and bumps bedsVersion", () => {
    const s = loaded();
    const v = s.bedsVersion;
    applyUpdate(s, update(), P0 + 250);
    expect(s.bedsVersion).toBe(v);
    const admitted: BedView = {
      bed: "bed-1",
      label: "Bed 1",
      admission: { id: "a1", display_name: "X", mrn: "1", date_of_birth: "2000-01-01", category: "adult", admitted_at: "2024-01-01T00:00:00Z", fhir_patient: null },
    };
    applyUpdate(s, update({ beds: [admitted, BEDS[1]] }), P0 + 500);
    expect(s.bedsVersion).toBe(v + 1);
    expect(s.beds[0].admission?.id).toBe("a1");
    setAdmission(s, "bed-1", null);
    expect(s.beds[0].admission).toBeNull();
    expect(s.bedsVersion).toBe(v + 2);
    setAdmission(s, "no-such-bed", null);
    expect(s.bedsVersion).toBe(v + 2);
  });

  it("a discharge clears the bed's values, and a late reading of the ended stay never shows", () => {
    const stay = (id: string): BedView => ({
      bed: "bed-1",
      label: "Bed 1",
      admission: { id, display_name: "X", mrn: "1", date_of_birth: "2000-01-01", category: "adult", admitted_at: "2024-01-01T00:00:00Z", fhir_patient: null },
    });
    const s = loaded(snapshot({ beds: [stay("a1"), BEDS[1]], latest: [reading({ mdc: MDC.HR, value: 79, admission: "a1" })] }));
    expect(latestReading(s, "bed-1", MDC.HR)?.value).toBe(79);
    // The screen applies the discharge at once; the core's batch still carries
    // a reading of the stay from just before it.
    setAdmission(s, "bed-1", null);
    expect(latestReading(s, "bed-1", MDC.HR)).toBeUndefined();
    applyUpdate(s, update({ beds: [BEDS[0], BEDS[1]], readings: [reading({ mdc: MDC.SPO2, value: 98, unit: "%", admission: "a1", received_ms: T0 + 100 })] }), P0 + 250);
    expect(latestReading(s, "bed-1", MDC.SPO2)).toBeUndefined();
    // Measured after the discharge (no patient admitted): shown.
    applyUpdate(s, update({ now_ms: T0 + 500, readings: [reading({ mdc: MDC.HR, value: 64, received_ms: T0 + 400 })] }), P0 + 500);
    expect(latestReading(s, "bed-1", MDC.HR)?.value).toBe(64);
    // The core's own echo of a discharge in one batch with the stay's last readings.
    const t = loaded(snapshot({ beds: [stay("a2"), BEDS[1]], latest: [reading({ mdc: MDC.HR, value: 70, admission: "a2" })] }));
    applyUpdate(t, update({ beds: [BEDS[0], BEDS[1]], readings: [reading({ mdc: MDC.HR, value: 71, admission: "a2", received_ms: T0 + 100 })] }), P0 + 250);
    expect(latestReading(t, "bed-1", MDC.HR)).toBeUndefined();
    // An admission keeps what was measured with no patient admitted, and takes the new stay's values.
    applyUpdate(t, update({ readings: [reading({ mdc: MDC.HR, value: 66, received_ms: T0 + 300 })] }), P0 + 400);
    applyUpdate(t, update({ beds: [stay("a3"), BEDS[1]], readings: [reading({ mdc: MDC.SPO2, value: 95, unit: "%", admission: "a3", received_ms: T0 + 400 })] }), P0 + 500);
    expect(latestReading(t, "bed-1", MDC.HR)?.value).toBe(66);
    expect(latestReading(t, "bed-1", MDC.SPO2)?.value).toBe(95);
  });

  it("buffered updates from before the snapshot: readings always, devices only if newer", () => {
    const s = loaded();
    applyBufferedUpdate(
      s,
      update({ now_ms: T0 - 100, readings: [reading({ mdc: MDC.RR, value: 14, received_ms: T0 - 150 })], devices: [device({ battery: 5 })] }),
      T0,
      P0,
    );
    expect(latestReading(s, "bed-1", MDC.RR)?.value).toBe(14);
    expect(bedDevices(s, "bed-1")[0].battery).toBe(80);
    expect(s.coreNowMs).toBe(T0); // the clock never moves back
    applyBufferedUpdate(s, update({ now_ms: T0 + 10, devices: [device({ battery: 5 })] }), T0, P0);
    expect(bedDevices(s, "bed-1")[0].battery).toBe(5);
    expect(s.coreNowMs).toBe(T0 + 10);
  });
});

describe("core time", () => {
  it("is unknown before any data", () => {
    const s = createState(0);
    expect(coreNow(s, 123)).toBeNull();
    const ctx = frameContext(s, 123);
    expect(ctx.coreNow).toBeNull();
    expect(ctx.hasData).toBe(false);
  });

  it("advances by performance.now() deltas since the last update", () => {
    const s = loaded();
    expect(coreNow(s, P0)).toBe(T0);
    expect(coreNow(s, P0 + 1234)).toBe(T0 + 1234);
    applyUpdate(s, update({ now_ms: T0 + 2000 }), P0 + 1990);
    expect(coreNow(s, P0 + 2000)).toBe(T0 + 2010);
  });

  it("never goes backwards if performance.now() is earlier than the last arrival", () => {
    const s = loaded();
    expect(coreNow(s, P0 - 50)).toBe(T0);
  });
});

describe("staleness", () => {
  const ctxAt = (s: ReturnType<typeof loaded>, perf: number) => frameContext(s, perf);

  it("is fresh at exactly stale_after_ms and stale 1 ms later", () => {
    const s = loaded(snapshot({ latest: [reading({ mdc: MDC.HR, received_ms: T0, stale_after_ms: 2000 })] }));
    // Keep the watchdog quiet: updates keep arriving, core time moves.
    applyUpdate(s, update({ now_ms: T0 + 1999 }), P0 + 1999);
    expect(numericModel(s, "bed-1", MDC.HR, ctxAt(s, P0 + 1999)).stale).toBe(false);
    expect(numericModel(s, "bed-1", MDC.HR, ctxAt(s, P0 + 2000)).stale).toBe(false); // age == 2000
    expect(numericModel(s, "bed-1", MDC.HR, ctxAt(s, P0 + 2001)).stale).toBe(true); // age == 2001
  });

  it("uses the core clock (now_ms), not the UI's clock", () => {
    // The core says it is 10 s after the reading: stale, even though the update just arrived.
    const s = loaded(snapshot({ now_ms: T0 + 10_000, latest: [reading({ mdc: MDC.HR, received_ms: T0, stale_after_ms: 5000 })] }));
    const m = numericModel(s, "bed-1", MDC.HR, ctxAt(s, P0));
    expect(m.stale).toBe(true);
    expect(m.ageMs).toBe(10_000);
    expect(m.text).toBe("72"); // the number is still shown, marked stale
  });

  it("advances age between updates and becomes stale without a new update", () => {
    const s = loaded(snapshot({ latest: [reading({ mdc: MDC.SPO2, unit: "%", value: 97, stale_after_ms: 1500 })] }));
    expect(numericModel(s, "bed-1", MDC.SPO2, ctxAt(s, P0 + 1500)).stale).toBe(false);
    const m = numericModel(s, "bed-1", MDC.SPO2, ctxAt(s, P0 + 1501));
    expect(m.stale).toBe(true);
    expect(m.ageMs).toBe(1501);
  });

  it("a reading received 'in the future' has age 0, not negative", () => {
    const s = loaded(snapshot({ latest: [reading({ mdc: MDC.HR, received_ms: T0 + 300 })] }));
    expect(numericModel(s, "bed-1", MDC.HR, ctxAt(s, P0)).ageMs).toBe(0);
  });

  it("isReadingStale is true when core time is unknown", () => {
    const r = reading({ mdc: MDC.HR });
    expect(isReadingStale(r, { coreNow: null, noData: false, hasData: false, sinceDataMs: 0 })).toBe(true);
  });
});

describe("no-data watchdog", () => {
  it("fires only after more than 3 s without an update", () => {
    const s = loaded();
    expect(isNoData(s, P0 + NO_DATA_AFTER_MS)).toBe(false);
    expect(isNoData(s, P0 + NO_DATA_AFTER_MS + 1)).toBe(true);
    applyUpdate(s, update({ now_ms: T0 + 3500 }), P0 + 3500);
    expect(isNoData(s, P0 + 3501)).toBe(false);
  });

  it("runs from UI start before any data arrives", () => {
    const s = createState(500);
    expect(isNoData(s, 500 + 3000)).toBe(false);
    expect(isNoData(s, 500 + 3001)).toBe(true);
    expect(frameContext(s, 500 + 3001).hasData).toBe(false);
  });

  it("marks every present value stale, however fresh it is", () => {
    const s = loaded(
      snapshot({
        latest: [
          reading({ mdc: MDC.HR, stale_after_ms: 60_000 }),
          reading({ mdc: MDC.TEMP, value: 37, unit: "Cel", device: "th", stale_after_ms: 600_000 }),
        ],
      }),
    );
    const ctx = frameContext(s, P0 + 3001);
    expect(ctx.noData).toBe(true);
    expect(numericModel(s, "bed-1", MDC.HR, ctx).stale).toBe(true);
    expect(temperatureModel(s, "bed-1", ctx).stale).toBe(true);
    // A value that never arrived has nothing to be stale: it stays "---".
    const rr = numericModel(s, "bed-1", MDC.RR, ctx);
    expect(rr.text).toBe("---");
    expect(rr.stale).toBe(false);
  });
});

describe("what a numeric shows", () => {
  const ctx = (s: ReturnType<typeof loaded>) => frameContext(s, P0);

  it("absent -> ---", () => {
    const s = loaded(snapshot({ latest: [] }));
    const m = numericModel(s, "bed-1", MDC.SPO2, ctx(s));
    expect(m).toMatchObject({ status: "absent", text: "---", unit: "%", stale: false, ageMs: null });
  });

  it("formats numbers per code and maps units", () => {
    const s = loaded(
      snapshot({
        latest: [
          reading({ mdc: MDC.HR, value: 71.6 }),
          reading({ mdc: MDC.TEMP, device: "th", value: 37.25, unit: "Cel" }),
          reading({ mdc: MDC.TEMP, bed: "bed-2", device: "th2", value: 99.14, unit: "[degF]" }),
        ],
      }),
    );
    expect(numericModel(s, "bed-1", MDC.HR, ctx(s))).toMatchObject({ status: "value", text: "72", unit: "/min", label: "HR" });
    expect(temperatureModel(s, "bed-1", ctx(s))).toMatchObject({ text: "37.3", unit: "°C" });
    expect(temperatureModel(s, "bed-2", ctx(s))).toMatchObject({ text: "99.1", unit: "°F" });
  });

  it.each([
    ["nan", "NaN (invalid)"],
    ["nres", "not at resolution"],
    ["+inf", "+INF (above range)"],
    ["-inf", "\u2212INF (below range)"],
    ["reserved", "reserved value"],
  ] as const)("special %s is never a number", (special, text) => {
    const s = loaded(snapshot({ latest: [reading({ mdc: MDC.HR, value: null, special })] }));
    expect(numericModel(s, "bed-1", MDC.HR, ctx(s))).toMatchObject({ status: "special", text: "---", note: text });
  });

  it("a special wins even if a number came along with it", () => {
    const s = loaded(snapshot({ latest: [reading({ mdc: MDC.HR, value: 2047, special: "nres" })] }));
    expect(numericModel(s, "bed-1", MDC.HR, ctx(s))).toMatchObject({ status: "special", text: "---" });
  });

  it("a value the device marked invalid is never digits, and says why", () => {
    const s = loaded(snapshot({ latest: [reading({ mdc: MDC.SPO2, value: null, quality: "invalid", flags: ["sensor disconnected"] })] }));
    expect(numericModel(s, "bed-1", MDC.SPO2, ctx(s))).toMatchObject({ status: "special", text: "---", note: "sensor disconnected" });
  });

  it("a questionable value is shown with the device's doubt beside it", () => {
    const s = loaded(snapshot({ latest: [reading({ mdc: MDC.SPO2, value: 91, quality: "questionable", flags: ["low perfusion detected"] })] }));
    expect(numericModel(s, "bed-1", MDC.SPO2, ctx(s))).toMatchObject({ status: "value", text: "91", note: "? low perfusion detected" });
  });

  it("a null value without a special is shown as no value", () => {
    const s = loaded(snapshot({ latest: [reading({ mdc: MDC.HR, value: null })] }));
    expect(numericModel(s, "bed-1", MDC.HR, ctx(s))).toMatchObject({ status: "special", text: "---", note: "no value" });
  });

  it("a technical condition on the feeding device overrides the number", () => {
    const s = loaded(snapshot({ devices: [device({ technical: "sensor contact lost" })] }));
    const m = numericModel(s, "bed-1", MDC.HR, ctx(s));
    expect(m).toMatchObject({ status: "technical", text: "---", note: "sensor contact lost" });
    // ...and clears when the device reports it is fine again.
    applyUpdate(s, update({ now_ms: T0, devices: [device({ technical: null })] }), P0);
    expect(numericModel(s, "bed-1", MDC.HR, ctx(s))).toMatchObject({ status: "value", text: "72" });
  });

  it("a technical condition on another device does not affect the numeric", () => {
    const s = loaded(snapshot({ devices: [device(), device({ device: "ox-1", kind: "pulse_oximeter", technical: "probe off" })] }));
    expect(numericModel(s, "bed-1", MDC.HR, ctx(s)).status).toBe("value");
  });
});

describe("heart rate with oximeter pulse-rate fallback", () => {
  const pr = (p: Partial<ReadingView> = {}) => reading({ mdc: MDC.PR_OXIMETER, device: "ox-1", value: 75, ...p });

  it("prefers HR when live", () => {
    const s = loaded(snapshot({ latest: [reading({ mdc: MDC.HR }), pr()] }));
    expect(heartRateModel(s, "bed-1", frameContext(s, P0))).toMatchObject({ mdc: MDC.HR, label: "HR", text: "72" });
  });

  it("falls back to PR when there is no HR", () => {
    const s = loaded(snapshot({ latest: [pr()] }));
    expect(heartRateModel(s, "bed-1", frameContext(s, P0))).toMatchObject({ mdc: MDC.PR_OXIMETER, label: "PR", text: "75" });
  });

  it("falls back to a live PR when HR is stale", () => {
    const s = loaded(snapshot({ latest: [reading({ mdc: MDC.HR, received_ms: T0 - 10_000 }), pr()] }));
    expect(heartRateModel(s, "bed-1", frameContext(s, P0)).mdc).toBe(MDC.PR_OXIMETER);
  });

  it("falls back to a live PR when the strap has a technical condition, and says why", () => {
    const s = loaded(snapshot({ devices: [device({ technical: "sensor contact lost" })], latest: [reading({ mdc: MDC.HR }), pr()] }));
    expect(heartRateModel(s, "bed-1", frameContext(s, P0))).toMatchObject({ mdc: MDC.PR_OXIMETER, text: "75", note: "HR: sensor contact lost" });
  });

  it("shows the technical HR when there is no PR to fall back to", () => {
    const s = loaded(snapshot({ devices: [device({ technical: "sensor contact lost" })] }));
    expect(heartRateModel(s, "bed-1", frameContext(s, P0))).toMatchObject({ mdc: MDC.HR, status: "technical", text: "---" });
  });

  it("when both are stale, shows HR as stale", () => {
    const s = loaded(snapshot({ latest: [reading({ mdc: MDC.HR }), pr()] }));
    expect(heartRateModel(s, "bed-1", frameContext(s, P0 + 3001))).toMatchObject({ mdc: MDC.HR, stale: true });
  });

  it("absent when neither arrived", () => {
    const s = loaded(snapshot({ latest: [] }));
    expect(heartRateModel(s, "bed-1", frameContext(s, P0))).toMatchObject({ mdc: MDC.HR, status: "absent", text: "---" });
  });
});

describe("NIBP", () => {
  const cuff = (mdc: number, value: number | null, p: Partial<ReadingView> = {}) =>
    reading({ mdc, value, unit: "mm[Hg]", device: "cuff-1", stale_after_ms: 900_000, received_ms: T0 - 240_000, ...p });

  it("shows sys/dia (mean), the unit and the measurement age", () => {
    const s = loaded(snapshot({ latest: [cuff(MDC.NIBP_SYS, 121), cuff(MDC.NIBP_DIA, 79), cuff(MDC.NIBP_MEAN, 93)] }));
    const m = nibpModel(s, "bed-1", frameContext(s, P0));
    expect(m).toMatchObject({ status: "value", text: "121/79", meanText: "(93)", unit: "mmHg", stale: false, ageMs: 240_000, receivedMs: T0 - 240_000 });
  });

  it("absent -> ---", () => {
    const s = loaded(snapshot({ latest: [] }));
    expect(nibpModel(s, "bed-1", frameContext(s, P0))).toMatchObject({ status: "absent", text: "---", meanText: "" });
  });

  it("a special component is ---, with the special named", () => {
    const s = loaded(snapshot({ latest: [cuff(MDC.NIBP_SYS, 121), cuff(MDC.NIBP_DIA, null, { special: "nan" }), cuff(MDC.NIBP_MEAN, 93)] }));
    expect(nibpModel(s, "bed-1", frameContext(s, P0))).toMatchObject({ text: "121/---", note: "dia: NaN (invalid)" });
  });

  it("is stale when its reading is older than stale_after_ms", () => {
    const s = loaded(snapshot({ latest: [cuff(MDC.NIBP_SYS, 121, { stale_after_ms: 240_000 }), cuff(MDC.NIBP_DIA, 79, { stale_after_ms: 240_000 })] }));
    expect(nibpModel(s, "bed-1", frameContext(s, P0)).stale).toBe(false);
    expect(nibpModel(s, "bed-1", frameContext(s, P0 + 1)).stale).toBe(true);
  });

  it("a cuff technical condition hides the numbers", () => {
    const s = loaded(
      snapshot({
        devices: [device({ device: "cuff-1", kind: "blood_pressure_cuff", technical: "cuff loose" })],
        latest: [cuff(MDC.NIBP_SYS, 121), cuff(MDC.NIBP_DIA, 79)],
      }),
    );
    expect(nibpModel(s, "bed-1", frameContext(s, P0))).toMatchObject({ status: "technical", text: "---", note: "cuff loose" });
  });
});
