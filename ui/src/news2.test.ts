import { describe, expect, it } from "vitest";
import type { News2 } from "./contract";
import {
  appendHistory,
  badgeRisk,
  badgeText,
  incompleteText,
  isIncomplete,
  responseText,
  riskText,
  subScoreText,
  toObtainText,
  trendGeometry,
  trendMarks,
} from "./news2";

const T0 = Date.parse("2026-01-01T10:00:00Z");

function score(p: Partial<News2> = {}): News2 {
  return {
    at: new Date(T0).toISOString(),
    scale: "scale1",
    parameters: [{ parameter: "respiration_rate", score: { status: "scored", points: 2 } }],
    total: 5,
    any_single_3: false,
    risk: "medium",
    response: "Medium: key threshold for urgent response",
    complete: true,
    missing_parameters: [],
    stale_parameters: [],
    ...p,
  };
}

describe("NEWS2 formatting", () => {
  it("badge: NEWS2 <total> <RISK>", () => {
    expect(badgeText(score())).toBe("NEWS2 5 MEDIUM");
    expect(badgeText(score({ total: 3, risk: "low_medium" }))).toBe("NEWS2 3 LOW-MEDIUM");
    expect(badgeText(score({ total: 9, risk: "high" }))).toBe("NEWS2 9 HIGH");
    expect(badgeText(undefined)).toBe("NEWS2 --");
    expect(riskText("low")).toBe("LOW");
  });
  it("does not show an all-missing score as 0 LOW", () => {
    const none = score({ total: 0, risk: "low", response: "Routine monitoring", complete: false, parameters: [{ parameter: "spo2", score: { status: "missing" } }] });
    expect(badgeText(none)).toBe("NEWS2 --");
    expect(responseText(none)).toMatch(/Not enough/);
    expect(responseText(score())).toBe("Medium: key threshold for urgent response");
  });
  it("says when the total is only a lower bound", () => {
    expect(incompleteText(score())).toBe("");
    expect(incompleteText(score({ complete: false, missing_parameters: ["consciousness", "air_or_oxygen"], stale_parameters: ["systolic"] }))).toBe(
      "2 missing, 1 stale",
    );
  });
  it("sub-scores: points, missing, stale with age and last points", () => {
    expect(subScoreText({ status: "scored", points: 2 })).toBe("2");
    expect(subScoreText({ status: "missing" })).toBe("missing");
    expect(subScoreText({ status: "stale", age_s: 720, last_points: 1 })).toBe("stale (12 min) \u2014 was 1");
  });
});

describe("an incomplete NEWS2 is a lower bound, never a final score", () => {
  // The issue: 4 of 7 parameters missing read as "NEWS2 0 LOW \u2014 routine monitoring".
  const partial = score({
    total: 0,
    risk: "low",
    response: "Low: routine monitoring",
    complete: false,
    parameters: [
      { parameter: "respiration_rate", score: { status: "scored", points: 0 } },
      { parameter: "spo2", score: { status: "scored", points: 0 } },
      { parameter: "pulse", score: { status: "scored", points: 0 } },
    ],
    missing_parameters: ["air_or_oxygen", "systolic", "consciousness", "temperature"],
  });

  it("shows \u2265 N with no risk word", () => {
    expect(badgeText(partial)).toBe("NEWS2 \u2265 0");
    expect(badgeText(score({ total: 4, risk: "low", complete: false, missing_parameters: ["consciousness"] }))).toBe("NEWS2 \u2265 4");
    expect(badgeText(partial)).not.toMatch(/LOW|MEDIUM|HIGH/);
    expect(isIncomplete(partial)).toBe(true);
    expect(isIncomplete(score())).toBe(false);
  });
  it("has no risk colour: a neutral 'incomplete' badge", () => {
    expect(badgeRisk(partial)).toBe("incomplete");
    expect(badgeRisk(score({ complete: false, risk: "high", total: 8, missing_parameters: ["consciousness"] }))).toBe("incomplete");
    expect(badgeRisk(score())).toBe("medium");
    expect(badgeRisk(score({ risk: "low_medium" }))).toBe("low-medium");
    expect(badgeRisk(undefined)).toBeNull();
  });
  it("replaces the response with what to obtain, by name, missing then stale", () => {
    expect(responseText(partial)).toBe("incomplete \u2014 obtain Air or oxygen, Systolic BP, Consciousness (ACVPU), Temperature");
    expect(responseText(partial)).not.toMatch(/routine/i);
    const stale = score({ total: 2, risk: "low", complete: false, missing_parameters: ["consciousness"], stale_parameters: ["systolic"] });
    expect(toObtainText(stale)).toBe("Consciousness (ACVPU), Systolic BP (stale)");
    expect(toObtainText(score({ complete: false }))).toBe("the missing observations");
  });
  it("keeps the response a lower bound already calls for (\u2265 7 is at least an emergency)", () => {
    const high = score({ total: 8, risk: "high", response: "High: emergency response", complete: false, missing_parameters: ["consciousness"] });
    expect(responseText(high)).toBe("incomplete \u2014 obtain Consciousness (ACVPU). Already at least: High: emergency response");
    expect(badgeText(high)).toBe("NEWS2 \u2265 8");
  });
  it("a complete score is shown as before", () => {
    expect(badgeText(score())).toBe("NEWS2 5 MEDIUM");
    expect(responseText(score())).toBe("Medium: key threshold for urgent response");
  });
  it("marks incomplete points hollow in the trend, the latest larger", () => {
    const hist = [true, false, true, false].map((complete, i) => score({ complete, at: new Date(T0 + i * 60_000).toISOString() }));
    const marks = trendMarks(trendGeometry(hist, 300, 100, 0));
    expect(marks.map((m) => m.hollow)).toEqual([false, true, false, true]);
    expect(marks.map((m) => m.last)).toEqual([false, false, false, true]);
    expect(marks.map((m) => m.cx)).toEqual([0, 100, 200, 300]);
    expect(trendMarks(trendGeometry([], 300, 100))).toEqual([]);
  });
});

describe("NEWS2 trend", () => {
  it("maps time to x and total to y (0 at the bottom)", () => {
    const hist = [0, 5, 10].map((total, i) => score({ total, at: new Date(T0 + i * 60_000).toISOString() }));
    const g = trendGeometry(hist, 300, 100, 0);
    expect(g.points.map((p) => p.x)).toEqual([0, 150, 300]);
    expect(g.points.map((p) => p.y)).toEqual([100, 50, 0]);
    expect(g.y5).toBe(50);
    expect(g.y7).toBeCloseTo(30);
  });
  it("handles one and zero scores", () => {
    expect(trendGeometry([score()], 300, 100, 0).points[0].x).toBe(300);
    expect(trendGeometry([], 300, 100).points).toEqual([]);
  });
  it("appends without duplicating and bounds the history", () => {
    const a = score();
    expect(appendHistory([a], a)).toHaveLength(1);
    const many = Array.from({ length: 5 }, (_, i) => score({ at: new Date(T0 + i).toISOString() }));
    expect(appendHistory(many, score({ at: new Date(T0 + 99).toISOString() }), 5)).toHaveLength(5);
  });
});
