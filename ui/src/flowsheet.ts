// The flowsheet on screen (issue 15): one column per local hour of the site's
// zone, rows for each vital (the hour's median), NEWS2 and its sub-scores, and
// the alarms that started. The core builds it with the printed report's own
// column and median rules (vigil-report), so the screen and the PDF agree;
// this module only words the cells and lays out the table.
//
// An hour without data is blank, never 0: a 0 would read as a measured value.

import type { AdmissionListItem, FlowCellView, FlowRowView, FlowsheetView } from "./contract";
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
  const body = view.rows.map((r) =>
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
    ),
  );
  const caption = h("p", {
    class: "flowsheet-caption",
    text: `One column per hour of the ward's clock (${view.zone}); vitals: the hour's median; NEWS2: the hour's highest score and its parts; alarms: how many started, highest priority. Blank: nothing recorded.`,
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
