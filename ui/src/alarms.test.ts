import { describe, expect, it } from "vitest";
import type { ActiveAlarm, AlarmRecord, BedAlarmState, Priority } from "./contract";
import {
  alarmBarModel,
  alarmLogRows,
  alarmStatusText,
  audioStateText,
  bedSounding,
  flashHzText,
  flashPeriodS,
  flashPeriodValue,
  formatCountdown,
  idsToAcknowledge,
  limitText,
  limitTextForMdc,
  numericAlarms,
  pauseModel,
  priorityShape,
  priorityText,
  shortAlarmText,
  sortAlarms,
  wardSounding,
} from "./alarms";
import { MDC } from "./codes";
import { formatHm } from "./format";

const T0 = Date.parse("2026-01-01T10:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();

const SIGNAL: Record<Priority, ActiveAlarm["signal"]> = {
  high: { colour: "red", flash_hz: 2, duty: 0.5 },
  medium: { colour: "yellow", flash_hz: 0.6, duty: 0.5 },
  low: { colour: "cyan", flash_hz: null, duty: 1 },
};

function alarm(p: Partial<ActiveAlarm> & { priority?: Priority } = {}): ActiveAlarm {
  const priority = p.priority ?? "medium";
  return {
    id: 1,
    kind: { type: "physiological", parameter: "spo2", direction: "low" },
    priority,
    since: iso(T0),
    value: 85,
    limit: 90,
    latched: false,
    acknowledged: false,
    acknowledged_by: null,
    recurred: 0,
    recurring_since: null,
    audible: true,
    message: "SpO2 low 85 % < 90 %",
    signal: SIGNAL[priority],
    ...p,
  };
}

function bed(p: Partial<BedAlarmState> = {}): BedAlarmState {
  return {
    bed: "bed-1",
    category: "adult",
    active: [],
    audio: { state: "normal" },
    highest: null,
    sounding: null,
    limits: [],
    ...p,
  };
}

describe("alarm ordering", () => {
  it("puts the highest priority first, then unacknowledged, then oldest, then id", () => {
    const a = [
      alarm({ id: 1, priority: "low" }),
      alarm({ id: 2, priority: "medium", since: iso(T0 + 5000) }),
      alarm({ id: 3, priority: "high", acknowledged: true }),
      alarm({ id: 4, priority: "medium", since: iso(T0) }),
      alarm({ id: 5, priority: "high", since: iso(T0 + 9000) }),
      alarm({ id: 6, priority: "medium", since: iso(T0) }),
    ];
    expect(sortAlarms(a).map((x) => x.id)).toEqual([5, 3, 4, 6, 2, 1]);
  });
  it("does not mutate its input", () => {
    const a = [alarm({ id: 1, priority: "low" }), alarm({ id: 2, priority: "high" })];
    sortAlarms(a);
    expect(a.map((x) => x.id)).toEqual([1, 2]);
  });
});

describe("acknowledge covers only what was on screen", () => {
  it("'Acknowledge all' covers the drawn alarms that need a response, as drawn", () => {
    const m = alarmBarModel(
      [
        alarm({ id: 1, priority: "high" }),
        alarm({ id: 2, priority: "medium", acknowledged: true }),
        alarm({ id: 3, priority: "high", latched: true, acknowledged: false }),
        alarm({ id: 4, priority: "low" }),
      ],
      8,
    );
    expect(m.shown.map((a) => a.id)).toEqual([1, 3, 2, 4]);
    expect(m.ackAll).toEqual([
      { id: 1, priority: "high" },
      { id: 3, priority: "high" },
      { id: 4, priority: "low" },
    ]);
    expect(m.hiddenCount).toBe(0);
    expect(m.ackAllText).toBe("Acknowledge all");
  });
  it("never covers alarms folded into '+N more' (a tile), and says so", () => {
    const m = alarmBarModel([alarm({ id: 1, priority: "low" }), alarm({ id: 2, priority: "high" }), alarm({ id: 3, priority: "medium" })], 2);
    expect(m.shown.map((a) => a.id)).toEqual([2, 3]);
    expect(m.ackAll.map((s) => s.id)).toEqual([2, 3]);
    expect(m.hiddenCount).toBe(1);
    expect(m.ackAllText).toBe("Acknowledge shown");
    expect(alarmBarModel([], 2)).toMatchObject({ shown: [], ackAll: [], hiddenCount: 0 });
  });
  it("sends only ids that were on screen: an alarm that started since is not covered", () => {
    const seen = [{ id: 1, priority: "medium" as Priority }];
    const now = bed({ active: [alarm({ id: 1, priority: "medium" }), alarm({ id: 9, priority: "high", since: iso(T0 + 100) })] });
    expect(idsToAcknowledge(seen, now)).toEqual({ ids: [1], escalated: [] });
  });
  it("holds back an alarm that escalated since it was drawn, and drops ids that have gone", () => {
    const seen: { id: number; priority: Priority }[] = [
      { id: 1, priority: "medium" },
      { id: 2, priority: "low" },
      { id: 3, priority: "high" },
      { id: 2, priority: "low" },
    ];
    const now = bed({ active: [alarm({ id: 1, priority: "high" }), alarm({ id: 2, priority: "low" })] });
    expect(idsToAcknowledge(seen, now)).toEqual({ ids: [2], escalated: [1] });
    expect(idsToAcknowledge(seen, undefined)).toEqual({ ids: [], escalated: [] });
    expect(idsToAcknowledge([], now)).toEqual({ ids: [], escalated: [] });
  });
  it("a queued acknowledgement (initials entered later) applies to the ids seen at the click, not the newer set", () => {
    const seen = alarmBarModel([alarm({ id: 5, priority: "medium" })], 8).ackAll;
    // 40 s later: 5 has ended, 6 and 7 are new.
    const later = bed({ active: [alarm({ id: 6, priority: "high" }), alarm({ id: 7, priority: "medium" })] });
    expect(idsToAcknowledge(seen, later).ids).toEqual([]);
  });
});

describe("tile text", () => {
  it("a NEWS2 alarm reads as a lower bound while the bed's NEWS2 is incomplete", () => {
    const n = alarm({ kind: { type: "news2" }, value: 5, message: "NEWS2 5 (medium risk)" });
    expect(shortAlarmText(n)).toBe("NEWS2 5");
    expect(shortAlarmText(n, 5)).toBe("NEWS2 \u2265 5");
    // Raised by a complete 5, now incomplete with a lower bound of 0: the reason stays, no bound.
    expect(shortAlarmText(n, 0)).toBe("NEWS2 5");
    expect(shortAlarmText(alarm(), 3)).toBe("SpO2 low 85 % < 90 %");
  });
});

describe("priority presentation", () => {
  it("gives priority as text and shape, not colour alone", () => {
    expect(priorityText("high")).toBe("!!! HIGH");
    expect(priorityText("medium")).toBe("!! MED");
    expect(priorityText("low")).toBe("! LOW");
    expect(new Set(["high", "medium", "low"].map((p) => priorityShape(p as Priority))).size).toBe(3);
  });
  it("marks latched and acknowledged alarms", () => {
    expect(alarmStatusText(alarm({ latched: true }))).toMatch(/LATCHED.*acknowledge/);
    expect(alarmStatusText(alarm({ acknowledged: true }))).toMatch(/ACKNOWLEDGED/);
    expect(alarmStatusText(alarm({ acknowledged: true }), true)).toBe("\u2713 ACK");
    expect(alarmStatusText(alarm({ latched: true }), true)).toMatch(/LATCHED/);
    expect(alarmStatusText(alarm())).toBe("");
  });
  it("counts the unacknowledged episodes of a condition that keeps coming back", () => {
    const since = T0 - 3 * 3600_000;
    const a = alarm({ priority: "high", recurred: 49, recurring_since: iso(since) });
    expect(alarmStatusText(a)).toBe(`50 episodes since ${formatHm(since)}, none acknowledged`);
    expect(alarmStatusText(a, true)).toBe("\u00d750");
    expect(alarmStatusText({ ...a, latched: true })).toMatch(/^LATCHED \u2014 acknowledge \u00b7 50 episodes since/);
    // A first episode, or a core that does not send the count: nothing added.
    expect(alarmStatusText(alarm({ recurred: 0 }))).toBe("");
    expect(alarmStatusText({ ...alarm(), recurred: undefined as unknown as number })).toBe("");
  });
  it("says who acknowledged at the central station (the bedside must see it was not done here)", () => {
    const a = alarm({ acknowledged: true, acknowledged_by: "nurse.kim (central)" });
    expect(alarmStatusText(a)).toBe("\u2713 acknowledged at central by nurse.kim");
    expect(alarmStatusText(a, true)).toBe("\u2713 ACK (central)");
    expect(alarmStatusText(alarm({ acknowledged: true, acknowledged_by: "nurse.kim" }))).toMatch(/ACKNOWLEDGED/);
  });
  it("flashes at the signal's rate; low is steady", () => {
    expect(flashPeriodS(alarm({ priority: "high" }))).toBeCloseTo(0.5);
    expect(flashPeriodS(alarm({ priority: "medium" }))).toBeCloseTo(1 / 0.6);
    expect(flashPeriodS(alarm({ priority: "low" }))).toBeNull();
    expect(flashHzText(2)).toBe("2");
    expect(flashHzText(0.6)).toBe("0.6");
    expect(flashHzText(null)).toBe("");
    expect(flashHzText(0)).toBe("");
  });
  it("writes the flash period as a CSS time to the millisecond (within IEC 60601-1-8's ranges)", () => {
    expect(flashPeriodValue(flashPeriodS(alarm({ priority: "high" })))).toBe("0.5s");
    // 0.6 Hz drawn at 1/1.667 s = 0.5999 Hz: inside the medium range 0.4–0.8 Hz.
    expect(flashPeriodValue(flashPeriodS(alarm({ priority: "medium" })))).toBe("1.667s");
    expect(flashPeriodValue(null)).toBeNull();
  });
  it("draws any rate another station sends as a plain CSS time that still flashes", () => {
    // dom.ts customPropertyClass accepts only [0-9a-z.%-]: "1e+25s" would throw mid-render.
    for (const hz of [1e-25, Number.MIN_VALUE, 1e-3, 0.05, 2, 50, 1e6, 1e300, Number.MAX_VALUE]) {
      const v = flashPeriodValue(flashPeriodS({ signal: { flash_hz: hz } }));
      expect(v, `${hz} Hz`).toMatch(/^[0-9.]+s$/);
      const s = parseFloat(v!);
      expect(s).toBeGreaterThanOrEqual(0.1);
      expect(s).toBeLessThanOrEqual(10);
    }
    expect(flashPeriodValue(Infinity)).toBe("10s");
    expect(flashPeriodValue(NaN)).toBeNull();
  });
});

describe("audio-paused countdown", () => {
  const paused = (untilMs: number, remaining_s = 120) =>
    bed({ audio: { state: "paused", until: iso(untilMs), remaining_s, by: "AB" } });

  it("formats m:ss, rounding up", () => {
    expect(formatCountdown(103_000)).toBe("1:43");
    expect(formatCountdown(102_001)).toBe("1:43");
    expect(formatCountdown(120_000)).toBe("2:00");
    expect(formatCountdown(999)).toBe("0:01");
    expect(formatCountdown(0)).toBe("0:00");
    expect(formatCountdown(-5)).toBe("0:00");
  });
  it("counts down from `until` in core time", () => {
    const p = pauseModel(paused(T0 + 103_000), T0);
    expect(p).toMatchObject({ paused: true, text: "AUDIO PAUSED 1:43", by: "AB" });
  });
  it("is over exactly at `until`, before the engine says so", () => {
    expect(pauseModel(paused(T0 + 1), T0).paused).toBe(true);
    expect(pauseModel(paused(T0), T0)).toMatchObject({ paused: false, text: "audio on" });
  });
  it("uses remaining_s when core time is unknown", () => {
    expect(pauseModel(paused(T0, 65), null).text).toBe("AUDIO PAUSED 1:05");
  });
  it("says audio on when not paused or unknown", () => {
    expect(pauseModel(bed(), T0).text).toBe("audio on");
    expect(pauseModel(undefined, T0).paused).toBe(false);
  });
});

describe("audio pattern choice", () => {
  it("plays nothing without audible alarms", () => {
    expect(bedSounding(bed(), T0)).toBeNull();
    expect(bedSounding(bed({ active: [alarm({ acknowledged: true, audible: false })] }), T0)).toBeNull();
    expect(bedSounding(bed({ active: [alarm({ latched: true, audible: false })] }), T0)).toBeNull();
  });
  it("plays the highest present, unacknowledged alarm", () => {
    const s = bed({
      active: [alarm({ id: 1, priority: "high", acknowledged: true, audible: false }), alarm({ id: 2, priority: "medium" })],
      sounding: "medium",
    });
    expect(bedSounding(s, T0)).toBe("medium");
  });
  it("is silent while paused and sounds again once the pause has run out", () => {
    const s = bed({
      active: [alarm({ priority: "high", audible: false })],
      audio: { state: "paused", until: iso(T0 + 60_000), remaining_s: 60, by: "AB" },
    });
    expect(bedSounding(s, T0)).toBeNull();
    expect(bedSounding(s, T0 + 60_000)).toBe("high");
  });
  it("takes the highest over all beds, and high when the core is lost (its banner flashes red)", () => {
    const b1 = bed({ bed: "bed-1", active: [alarm({ priority: "low" })], sounding: "low" });
    const b2 = bed({ bed: "bed-2", active: [alarm({ priority: "high" })], sounding: "high" });
    expect(wardSounding([b1, b2], T0, false)).toBe("high");
    expect(wardSounding([b1], T0, false)).toBe("low");
    expect(wardSounding([b1], T0, true)).toBe("high");
    expect(wardSounding([], T0, true)).toBe("high");
    expect(wardSounding([], T0, false)).toBeNull();
  });
  it("reports the audio state for tests", () => {
    expect(audioStateText(false, "high")).toBe("blocked");
    expect(audioStateText(true, "high")).toBe("playing high");
    expect(audioStateText(true, "medium")).toBe("playing medium");
    expect(audioStateText(true, null)).toBe("silent");
  });
});

describe("limits and numerics", () => {
  const lim = (low: number | null, high: number | null) => ({
    low,
    high,
    critical_low: null,
    critical_high: null,
    priority_low: "medium" as const,
    priority_high: "medium" as const,
    delay_s: 10,
  });
  it("formats limits", () => {
    expect(limitText(lim(50, 120))).toBe("50\u2013120");
    expect(limitText(lim(90, null))).toBe("\u226590");
    expect(limitText(lim(null, 39), 1)).toBe("\u226439.0");
    expect(limitText(lim(null, null))).toBe("OFF");
    expect(limitText({ ...lim(null, null), critical_low: 40 })).toBe("\u226540");
  });
  it("finds a numeric's limits by code; temperature to 0.1; patient-specific marked", () => {
    const s = bed({
      limits: [
        { parameter: "heart_rate", label: "HR", unit: "/min", limit: lim(50, 120), patient_specific: false },
        { parameter: "temperature", label: "Temp", unit: "Cel", limit: lim(36, 39), patient_specific: true },
      ],
    });
    expect(limitTextForMdc(s, MDC.HR)).toBe("50\u2013120");
    expect(limitTextForMdc(s, MDC.TEMP)).toBe("36.0\u201339.0 (patient)");
    expect(limitTextForMdc(s, MDC.SPO2)).toBe("");
    expect(limitTextForMdc(undefined, MDC.HR)).toBe("");
  });
  it("maps present physiological alarms to their numeric box, highest priority", () => {
    const s = bed({
      active: [
        alarm({ id: 1, priority: "medium", kind: { type: "physiological", parameter: "pulse_rate", direction: "high" } }),
        alarm({ id: 2, priority: "high", kind: { type: "physiological", parameter: "heart_rate", direction: "high" } }),
        alarm({ id: 3, priority: "high", latched: true }),
        alarm({ id: 4, priority: "medium", kind: { type: "physiological", parameter: "nibp_systolic", direction: "low" } }),
        alarm({ id: 5, priority: "medium", kind: { type: "technical", device: "ox-1", kind: "sensor_off", parameter: null } }),
      ],
    });
    const m = numericAlarms(s);
    expect(m.get("hr")?.id).toBe(2);
    expect(m.get("nibp")?.id).toBe(4);
    expect(m.has("spo2")).toBe(false); // latched: the condition has ended
    expect(m.size).toBe(2);
  });
});

describe("alarm log rows", () => {
  it("turns records into rows, newest first, with who acknowledged", () => {
    const rec = (id: number, atMs: number, event: AlarmRecord["event"]["event"], priority: Priority | null = "high"): AlarmRecord => ({
      id,
      bed: "bed-1",
      at: iso(atMs),
      event: { id: priority ? 7 : null, bed: "bed-1", kind: priority ? { type: "physiological", parameter: "spo2", direction: "low" } : null, priority, event, at: iso(atMs), message: priority ? "SpO2 low 85 % < 90 %" : "audio paused" },
    });
    const rows = alarmLogRows([
      rec(1, T0, { type: "started", value: 85, limit: 90 }),
      rec(2, T0 + 1000, { type: "audio_paused", user: "AB", until: iso(T0 + 121_000) }, null),
      rec(3, T0 + 2000, { type: "acknowledged", user: "CD" }),
      rec(4, T0 + 3000, { type: "limit_changed", parameter: "heart_rate", from: null, to: null, user: "EF" }, null),
      rec(5, T0 + 4000, { type: "limit_changed", parameter: "heart_rate", from: null, to: null, user: null }, null),
    ]);
    expect(rows.map((r) => [r.event, r.by, r.priority])).toEqual([
      ["Limit reverted (discharge)", "", null],
      ["Limit changed", "EF", null],
      ["Acknowledged", "CD", "high"],
      ["Audio paused", "AB", null],
      ["Started", "", "high"],
    ]);
  });
});
