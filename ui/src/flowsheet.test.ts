import { describe, expect, it } from "vitest";
import type { FlowCellView, News2HourView, News2PartView } from "./contract";
import { dateSpans, flowCellText, flowRowLabel, news2PartText, news2Rows, news2TotalText, stayEnd } from "./flowsheet";

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

const part = (label: string, points: number | null, extra: Partial<News2PartView> = {}): News2PartView => ({ label, points, stale: false, entered: false, ...extra });
const hour = (score: News2HourView["score"], entries: News2HourView["entries"] = []): News2HourView => ({ score, scores: score ? 1 : 0, entries });
const score = (total: number, complete: boolean, risk: string, parts: News2PartView[]): NonNullable<News2HourView["score"]> => ({ at: "2026-03-30T13:30:30Z", total, complete, risk, parts });

describe("NEWS2 in the flowsheet (structured, per hour)", () => {
  it("the total is blank without a score, a lower bound when incomplete", () => {
    expect(news2TotalText(hour(null))).toBe("");
    expect(news2TotalText(hour(score(6, true, "medium", [])))).toBe("6");
    expect(news2TotalText(hour(score(4, false, "low", [])))).toBe("\u2265 4");
  });

  it("a sub-score says when a nurse entered it, when it was stale and when it was missing (as the PDF prints it)", () => {
    expect(news2PartText(part("HR", 1))).toBe("1");
    expect(news2PartText(part("RR", 2, { entered: true }))).toBe("2*");
    expect(news2PartText(part("HR", 1, { stale: true }))).toBe("(1)");
    expect(news2PartText(part("BP", null))).toBe("\u2013");
    expect(news2PartText(undefined)).toBe("");
  });

  it("rows: the total with its risk, each part in the chart's order, then the hour's nurse entries", () => {
    const parts = [part("RR", 2, { entered: true }), part("SpO2", 2), part("BP", null)];
    const rows = news2Rows([
      hour(score(6, true, "medium", parts), [{ at: "2026-03-30T13:30:00Z", text: "RR 22 /min", by: "e2e-nurse" }]),
      hour(null),
      hour(score(3, false, "low", parts)),
    ]);
    expect(rows.map((r) => r.label)).toEqual(["NEWS2", "RR", "SpO2", "BP", "Nurse entries"]);
    expect(rows[0].cells.map((c) => [c.text, c.risk])).toEqual([["6", "medium"], ["", undefined], ["\u2265 3", "incomplete"]]);
    expect(rows[1].cells.map((c) => [c.text, c.entered])).toEqual([["2*", true], ["", false], ["2*", true]]);
    // A stale entry is shown as stale, not as a counted entry.
    const stale = news2Rows([hour(score(0, false, "low", [part("RR", 2, { entered: true, stale: true })]))]);
    expect([stale[1].cells[0].text, stale[1].cells[0].entered]).toEqual(["(2)", false]);
    expect(rows[3].cells[0].text).toBe("\u2013");
    expect(rows[4].cells.map((c) => c.text)).toEqual(["1", "", ""]);
    expect(rows[4].cells[0].title).toBe("RR 22 /min (by e2e-nurse)");
  });

  it("a range without any NEWS2 has no NEWS2 rows", () => {
    expect(news2Rows([hour(null), hour(null)])).toEqual([]);
  });
});
