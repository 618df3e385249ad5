import { describe, expect, it } from "vitest";
import type { TrendSeries } from "./contract";
import { alignSeries, lineRuns, markCaption, markColor, markDash, markKindText, markSpan, panRange, rangeWithLimits, snapSelection, timeTicks, trendStatus, zoomRange } from "./trenddata";

const series = (code: number, t: number[], value: (number | null)[], raw = true): TrendSeries => ({
  code,
  unit: "/min",
  raw,
  t,
  value,
  min: value,
  max: value,
  special: [],
});

describe("trends on one time axis", () => {
  it("a gap the core marked stays a break; the other series' times are passed over", () => {
    const hr = series(147842, [0, 1000, 2000, 5000, 9000], [70, 71, null, 80, 81]);
    const spo2 = series(150456, [500, 1500, 9000], [97, 96, 95]);
    const [t, a, b] = alignSeries({ series: [hr, spo2] });
    expect(t).toEqual([0, 500, 1000, 1500, 2000, 5000, 9000]);
    expect(a).toEqual([70, undefined, 71, undefined, null, 80, 81]);
    expect(b).toEqual([undefined, 97, undefined, 96, undefined, undefined, 95]);
    // The heart rate is drawn in two pieces, SpO2 in one.
    expect(lineRuns(hr.value)).toBe(2);
    expect(lineRuns(spo2.value)).toBe(1);
    expect(lineRuns([null, null])).toBe(0);
  });

  it("pans by half the span, never into the future", () => {
    expect(panRange(0, 100, -1, 1000)).toEqual([-50, 50]);
    expect(panRange(800, 1000, 1, 1000)).toEqual([800, 1000]);
    expect(panRange(700, 900, 1, 1000)).toEqual([800, 1000]);
  });

  it("a past stay pans no earlier than its admission and no later than its discharge", () => {
    // Stay 1000..5000: half a 1000-wide range back from 1200 would start at 700.
    expect(panRange(1200, 2200, -1, 5000, 1000)).toEqual([1000, 2000]);
    // A 7-day view that already starts before the admission stays put.
    expect(panRange(500, 5000, -1, 5000, 1000)).toEqual([500, 5000]);
    expect(panRange(4000, 5000, 1, 5000, 1000)).toEqual([4000, 5000]);
  });

  it("a zoom is at least a minute, in either drag direction", () => {
    expect(zoomRange(5000, 1000)).toEqual([-27000, 33000]);
    expect(zoomRange(0, 3_600_000)).toEqual([0, 3_600_000]);
  });

  it("says whether every sample is shown", () => {
    expect(trendStatus({ series: [series(1, [], [])] }, 0, 3_600_000)).toBe("1 h \u00b7 every sample");
    expect(trendStatus({ series: [series(1, [], [], false)] }, 0, 7 * 86_400_000)).toMatch(/^7 days \u00b7 mean per interval/);
    expect(trendStatus({ series: [series(1, [], [])] }, 0, 600_000)).toBe("10 min \u00b7 every sample");
  });

  it("marks alarms in their priority's colour", () => {
    expect(markColor({ kind: "alarm", priority: "high" })).toBe("#ff4d4f");
    expect(markColor({ kind: "news2", priority: null })).not.toBe(markColor({ kind: "alarm", priority: "high" }));
  });

  it("a nurse's NEWS2 entry has its own colour, place and word, apart from alarms and NEWS2 changes", () => {
    const entry = markColor({ kind: "news2_entry", priority: null });
    const others = [
      markColor({ kind: "news2", priority: null }),
      markColor({ kind: "technical", priority: null }),
      ...["high", "medium", "low"].map((p) => markColor({ kind: "alarm", priority: p })),
    ];
    expect(others).not.toContain(entry);
    expect(new Set([markSpan("alarm"), markSpan("news2"), markSpan("news2_entry")]).size).toBe(3);
    expect(markSpan("technical")).toBe("full");
    expect(markKindText("news2_entry")).toBe("Nurse entry");
    expect(markKindText("news2")).toBe("NEWS2");
  });

  it("labels the time axis in 24 h local time, with the date over long ranges", () => {
    const t = new Date(2026, 11, 5, 0, 0).getTime();
    expect(timeTicks([t + 3_600_000 * 13.5], 3_600_000)).toEqual(["13:30"]);
    expect(timeTicks([t, t + 6 * 3_600_000], 7 * 86_400_000)).toEqual(["00:00\n05/12", "06:00"]);
    // A 7-day view starting at 16:00: the date goes under the time, so labels 8 h apart never overlap.
    expect(timeTicks([t - 8 * 3_600_000, t, t + 8 * 3_600_000], 7 * 86_400_000)).toEqual(["16:00\n04/12", "00:00\n05/12", "08:00"]);
  });

  it("widens a scale to show its limits, and leaves an empty one alone", () => {
    expect(rangeWithLimits(70, 90, 50, 120)).toEqual([46.5, 123.5]);
    expect(rangeWithLimits(null, null, null, null)).toBeNull();
    expect(rangeWithLimits(97, 97, null, null)).toEqual([96, 98]);
  });

  it("a drag to the right edge means until the end of the range", () => {
    expect(snapSelection(500, 998, 1000, 0, 1_000_000)).toEqual([500_000, 1_000_000]);
    expect(snapSelection(2, 500, 1000, 0, 1_000_000)).toEqual([0, 500_000]);
  });
});

describe("device changes on the trend", () => {
  // A step in SpO2 when the probe was swapped must not read as an alarm or as
  // the patient: the mark is its own kind, drawn dashed across the chart in a
  // neutral colour, captioned on the chart and listed by name in the events.
  const change = { t: 1_800_000, kind: "device_change", priority: null, label: "SpO2: device changed to ble-C4:7C:8D:6A:11:07" };
  it("is dashed, full height, neutral and captioned; nothing else is dashed", () => {
    expect(markDash(change.kind).length).toBeGreaterThan(0);
    expect(markSpan(change.kind)).toBe("full");
    expect(markCaption(change.kind)).toBe("device changed");
    for (const kind of ["alarm", "technical", "news2", "news2_entry"]) {
      expect(markDash(kind)).toEqual([]);
      expect(markCaption(kind)).toBeNull();
    }
    const others = [
      ...["high", "medium", "low"].map((p) => markColor({ kind: "alarm", priority: p })),
      markColor({ kind: "news2", priority: null }),
      markColor({ kind: "news2_entry", priority: null }),
      markColor({ kind: "technical", priority: null }),
    ];
    expect(others).not.toContain(markColor(change));
    // Neutral: a grey (red, green and blue within a few steps of each other).
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(markColor(change).slice(i, i + 2), 16));
    expect(Math.max(r, g, b) - Math.min(r, g, b)).toBeLessThan(24);
  });

  it("is listed in the events as a device change", () => {
    expect(markKindText(change.kind)).toBe("Device changed");
  });
});
