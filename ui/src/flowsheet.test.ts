import { describe, expect, it } from "vitest";
import type { FlowCellView } from "./contract";
import { dateSpans, flowCellText, flowRowLabel, stayEnd } from "./flowsheet";

const cell = (value: number | null, count = 1, priority: string | null = null): FlowCellView => ({ value, count, priority });

describe("flowsheet cells", () => {
  it("an hour without data is blank, never 0; a measured or scored 0 is shown", () => {
    expect(flowCellText({ kind: "vital" }, cell(null, 0))).toBe("");
    expect(flowCellText({ kind: "news2" }, cell(null, 0))).toBe("");
    expect(flowCellText({ kind: "subscore" }, cell(0))).toBe("0");
    expect(flowCellText({ kind: "alarms" }, cell(null, 0))).toBe("");
  });

  it("a median between two samples keeps one decimal; whole values none", () => {
    expect(flowCellText({ kind: "vital" }, cell(72, 720))).toBe("72");
    expect(flowCellText({ kind: "vital" }, cell(72.5, 720))).toBe("72.5");
    expect(flowCellText({ kind: "vital" }, cell(37.25, 60))).toBe("37.3");
  });

  it("alarm cells say how many started and the highest priority", () => {
    expect(flowCellText({ kind: "alarms" }, cell(2, 2, "high"))).toBe("2 high");
    expect(flowCellText({ kind: "technical" }, cell(1, 1, "low"))).toBe("1 low");
  });

  it("rows are labelled with their display unit; sub-scores sit under NEWS2", () => {
    expect(flowRowLabel({ kind: "vital", label: "SpO2", unit: "%" })).toBe("SpO2, %");
    expect(flowRowLabel({ kind: "vital", label: "PR (SpO2)", unit: "/min" })).toBe("PR (SpO2), /min");
    expect(flowRowLabel({ kind: "subscore", label: "RR", unit: "" })).toBe("\u00b7 RR");
    expect(flowRowLabel({ kind: "news2", label: "NEWS2", unit: "" })).toBe("NEWS2");
  });

  it("the header groups hours by local date, a 23-hour day included", () => {
    const cols = [
      { date: "2026-03-28" },
      ...Array.from({ length: 23 }, () => ({ date: "2026-03-29" })),
      { date: "2026-03-30" },
    ];
    expect(dateSpans(cols)).toEqual([
      { date: "2026-03-28", span: 1 },
      { date: "2026-03-29", span: 23 },
      { date: "2026-03-30", span: 1 },
    ]);
  });
});

describe("a stay's span", () => {
  it("ends at its discharge, or now while the patient is still admitted", () => {
    expect(stayEnd({ discharged_at: "2026-03-31T12:00:00Z" }, 0)).toBe(Date.parse("2026-03-31T12:00:00Z"));
    expect(stayEnd({ discharged_at: null }, 1234)).toBe(1234);
  });
});
