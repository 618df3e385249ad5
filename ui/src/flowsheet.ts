// The flowsheet on screen (issue 15): one column per local hour of the site's
// zone, rows for each vital (the hour's median), NEWS2 and its sub-scores, and
// the alarms that started. The core builds it with the printed report's own
// column, median and NEWS2 rules (vigil-report), so the screen and the PDF
// agree; this module only words the cells and lays out the table.
//
// NEWS2 comes structured per hour (`FlowsheetView.news2`): the hour's highest
// recorded score (highest clinical risk, then total; RCP NEWS2 2017) with its
// own sub-scores, each marked when a nurse entered it, and the hour's entries.
//
// An hour without data is blank, never 0: a 0 would read as a measured value.

import type { AdmissionListItem, FlowCellView, FlowRowView, FlowsheetView, News2HourView, News2PartView } from "./contract";
import { displayUnit } from "./codes";
import { h } from "./dom";

/** A cell's text: "" when the hour holds nothing. */
export function flowCellText(row: Pick<FlowRowView, "kind">, cell: FlowCellView): string {
  if (cell.value === null) return "";
  if (row.kind === "alarms" || row.kind === "technical") return cell.priority ? `${cell.value} ${cell.priority}` : String(cell.value);
  // A median of an even count can fall between two samples: one decimal then.
  return Number.isInteger(cell.value) ? String(cell.value) : cell.value.toFixed(1);
}

/** A row's label as printed in the first column: "HR, /min", "PR (SpO2), /min", "NEWS2", "· SpO2". */
export function flowRowLabel(row: Pick<FlowRowView, "kind" | "label" | "unit">): string {
  if (row.kind === "subscore") return `\u00b7 ${row.label}`;
  return row.unit ? `${row.label}, ${displayUnit(row.unit)}` : row.label;
}

/** The hour's NEWS2 total: "" (none recorded), "5", or "≥ 3" when incomplete (a lower bound). */
export function news2TotalText(hour: News2HourView): string {
  const s = hour.score;
  if (!s) return "";
  return s.complete ? String(s.total) : `\u2265 ${s.total}`;
}

/** A sub-score as the PDF prints it: "2", "2*" (entered by a nurse), "(1)" (stale: last points, not counted), "–" (missing). */
export function news2PartText(part: News2PartView | undefined): string {
  if (!part) return "";
  if (part.points === null) return "\u2013";
  if (part.stale) return `(${part.points})`;
  return part.entered ? `${part.points}*` : String(part.points);
}

function news2PartTitle(part: News2PartView): string {
  if (part.points === null) return "missing";
  if (part.stale) return "stale: its last points, not counted in the total";
  return part.entered ? "entered by a nurse" : "measured";
}

/** One printed NEWS2 row: a cell's text, hover text and marks. */
export interface News2Cell {
  text: string;
  title?: string;
  /** The total: its risk, "incomplete" for a lower bound (no risk colour, as on the badge). */
  risk?: string;
  /** A nurse entered this counted sub-score. */
  entered?: boolean;
}
export interface News2Row {
  kind: "news2" | "subscore" | "entries";
  label: string;
  cells: News2Cell[];
}

/** NEWS2 rows (total, each part in the chart's order, nurse entries); none when the range has no NEWS2 at all. */
export function news2Rows(hours: readonly News2HourView[]): News2Row[] {
  if (!hours.some((h) => h.score || h.entries.length > 0)) return [];
  const labels = hours.find((h) => h.score)?.score?.parts.map((p) => p.label) ?? [];
  const total: News2Row = {
    kind: "news2",
    label: "NEWS2",
    cells: hours.map((h) => ({
      text: news2TotalText(h),
      title: h.score ? `${h.scores} score(s) in the hour; shown: the highest (${h.score.complete ? h.score.risk : "incomplete"})` : undefined,
      risk: h.score ? (h.score.complete ? h.score.risk : "incomplete") : undefined,
    })),
  };
  const parts: News2Row[] = labels.map((label) => ({
    kind: "subscore",
    label,
    cells: hours.map((h) => {
      const p = h.score?.parts.find((x) => x.label === label);
      // Marked only while it counts: a stale entry reads "(n)", muted like any stale part.
      return { text: news2PartText(p), title: p ? news2PartTitle(p) : undefined, entered: !!p && p.entered && !p.stale && p.points !== null };
    }),
  }));
  const entries: News2Row = {
    kind: "entries",
    label: "Nurse entries",
    cells: hours.map((h) => ({
      text: h.entries.length ? String(h.entries.length) : "",
      title: h.entries.length ? h.entries.map((e) => `${e.text} (by ${e.by})`).join("\n") : undefined,
    })),
  };
  return [total, ...parts, entries];
}

/** Runs of columns on the same local date: the header's first line. */
export function dateSpans(columns: readonly { date: string }[]): { date: string; span: number }[] {
  const out: { date: string; span: number }[] = [];
  for (const c of columns) {
    const last = out[out.length - 1];
    if (last && last.date === c.date) last.span++;
    else out.push({ date: c.date, span: 1 });
  }
  return out;
}

/** The end of a stay's data (ms): its discharge, or now while still admitted. */
export function stayEnd(a: Pick<AdmissionListItem, "discharged_at">, now: number): number {
  return a.discharged_at ? Date.parse(a.discharged_at) : now;
}

/** The flowsheet as a table (first column and header rows stay in view while scrolling). */
export function flowsheetTable(view: FlowsheetView): HTMLElement {
  if (view.columns.length === 0) return h("p", { class: "flowsheet-none", text: "No hours in this range." });
  const dates = h("tr", {}, h("th", { class: "flow-corner", text: view.zone }), ...dateSpans(view.columns).map((d) => h("th", { class: "flow-date", text: d.date, attrs: { colspan: String(d.span) } })));
  const hours = h(
    "tr",
    {},
    h("th", { class: "flow-corner" }),
    ...view.columns.map((c) => h("th", { class: "flow-hour", text: c.time, attrs: { title: `${c.date} ${c.time} ${c.zone}`, "data-start": c.start } }, h("small", { text: c.zone }))),
  );
  const vitals = view.rows.filter((r) => r.kind === "vital");
  const others = view.rows.filter((r) => r.kind !== "vital");
  const rowOf = (r: FlowRowView) =>
    h(
      "tr",
      { class: `flow-row flow-${r.kind}` },
      h("th", { class: "flow-label", text: flowRowLabel(r) }),
      ...r.cells.map((cell, i) => {
        const td = h("td", {
          testid: "flow-cell",
          text: flowCellText(r, cell),
          attrs: { "data-row": r.label, "data-kind": r.kind, "data-col": view.columns[i]?.start ?? "" },
        });
        // Alarm rows: their top priority; NEWS2: its clinical risk (RCP NEWS2 2017).
        if (cell.priority) td.dataset[r.kind === "news2" ? "risk" : "priority"] = cell.priority;
        if (cell.value !== null && r.kind !== "subscore") td.title = `${cell.count} ${r.kind === "vital" ? "sample(s)" : r.kind === "news2" ? "score(s)" : "alarm(s)"} in the hour`;
        return td;
      }),
    );
  const news2 = news2Rows(view.news2).map((r) =>
    h(
      "tr",
      { class: `flow-row flow-${r.kind}` },
      h("th", { class: "flow-label", text: flowRowLabel({ kind: r.kind, label: r.label, unit: "" }) }),
      ...r.cells.map((cell, i) => {
        const td = h("td", {
          testid: "flow-cell",
          text: cell.text,
          attrs: { "data-row": r.label, "data-kind": r.kind, "data-col": view.columns[i]?.start ?? "" },
        });
        if (cell.title) td.title = cell.title;
        if (cell.risk) td.dataset.risk = cell.risk;
        if (cell.entered) td.dataset.entered = "true";
        return td;
      }),
    ),
  );
  const body = [...vitals.map(rowOf), ...news2, ...others.map(rowOf)];
  const caption = h("p", {
    class: "flowsheet-caption",
    text: `One column per hour of the ward's clock (${view.zone}); vitals: the hour's median; NEWS2: the hour's highest recorded score (highest risk, then total) and its own parts, * entered by a nurse, (n) stale, \u2013 missing, \u2265 incomplete; alarms: how many started, highest priority. Blank: nothing recorded.`,
  });
  return h(
    "div",
    {},
    caption,
    h(
      "div",
      { class: "flowsheet-scroll" },
      h("table", { class: "flowsheet", testid: "flowsheet-table" }, h("thead", {}, dates, hours), h("tbody", {}, ...body)),
    ),
  );
}
