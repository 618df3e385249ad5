// The trend screen (issue 15): a bed's parameters over 1 h … 7 days on one
// time axis, drawn with uPlot — a small canvas time-series library made for
// hundreds of thousands of points, so a week of 1 Hz summaries pans and
// zooms without stutter in the bedside webview (SVG or DOM charts slow down
// long before that). Reports are drawn in Rust with plotters instead; this is
// only the live screen.
//
// Drag across the chart to zoom (ranges of 2 h or less come back as every
// sample), "Earlier"/"Later" pan by half the range. Gaps stay gaps; a long
// range shows each interval's mean with its min–max range, so a short
// desaturation is not averaged away; limits are bands; alarm and NEWS2
// events are marked on the time axis and listed under the chart.
//
// A past admission (the Admissions… screen) opens the same panel on its stay:
// the range buttons count back from its discharge, panning stops there, and
// the core keeps every request inside the stay. "Flowsheet" shows the range
// on screen as hourly columns (flowsheet.ts).

import type uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { FlowsheetRequest, FlowsheetView, ParameterLimit, TrendRequest, TrendView } from "./contract";
import { flowsheetTable } from "./flowsheet";
import { PARAMETER_MDC } from "./alarms";
import { displayUnit, mdcLabel } from "./codes";
import { h, setText } from "./dom";
import { alignSeries, lineRuns, markCaption, markColor, markDash, markKindText, markSpan, panRange, rangeWithLimits, seriesColor, snapSelection, timeTicks, TREND_CODES, TREND_RANGES, trendStatus, zoomRange } from "./trenddata";
import { formatDateTime } from "./format";
import { commandErrorText, toCommandError } from "./validate";

export interface TrendDeps {
  trend(request: TrendRequest): Promise<TrendView>;
  /** The bed's current alarm limits (drawn as bands). */
  limitsOf(bed: string): ParameterLimit[];
  /** The core's clock (ms): the end of "the last N hours". */
  now(): number;
  /** The flowsheet of a range (absent: no Flowsheet tab). */
  flowsheet?(request: FlowsheetRequest): Promise<FlowsheetView>;
}

/** A stay reviewed by admission id: its span (ms; `end` null while still admitted). */
export interface Stay {
  admission: string;
  start: number;
  end: number | null;
}

/** The most events listed under the chart. */
const MARKS_LISTED = 200;

let uPlotModule: Promise<typeof uPlot> | null = null;

/**
 * uPlot, loaded when the first trend opens. It builds an `Intl.NumberFormat`
 * for `navigator.language` as it loads, which throws where the webview reports
 * a locale that is not a language tag ("C" on a gateway started with LANG=C):
 * then the page takes "en-US" for it, rather than failing to draw any trend.
 */
function loadUPlot(): Promise<typeof uPlot> {
  if (!uPlotModule) {
    try {
      new Intl.NumberFormat(navigator.language);
    } catch {
      Object.defineProperty(navigator, "language", { value: "en-US", configurable: true });
    }
    uPlotModule = import("uplot").then((m) => m.default);
  }
  return uPlotModule;
}

export class TrendPanel {
  readonly root: HTMLElement;
  private readonly chart: HTMLElement;
  private readonly status: HTMLElement;
  private readonly error: HTMLElement;
  private readonly marks: HTMLOListElement;
  private readonly rangeButtons = new Map<string, HTMLButtonElement>();
  private codes: number[] = [TREND_CODES[0]];
  private from = 0;
  private to = 0;
  private plot: uPlot | null = null;
  private readonly chartPane: HTMLElement;
  private readonly flowPane: HTMLElement;
  private readonly tabs = new Map<"chart" | "flowsheet", HTMLButtonElement>();
  private tab: "chart" | "flowsheet" = "chart";
  private flowSeq = 0;
  /** Answers to older requests are dropped (a fast clicker must not see a stale range). */
  private seq = 0;

  constructor(
    private readonly deps: TrendDeps,
    private readonly bed: string,
    title: string,
    private readonly stay: Stay | null = null,
  ) {
    const ranges = h("div", { class: "trend-ranges", attrs: { role: "group", "aria-label": "Range" } });
    for (const r of TREND_RANGES) {
      const b = h("button", { class: "btn", testid: `trend-range-${r.id}`, text: r.label, attrs: { type: "button" } });
      b.addEventListener("click", () => {
        const end = this.end();
        void this.load(end - r.ms, end);
      });
      this.rangeButtons.set(r.id, b);
      ranges.append(b);
    }
    const earlier = h("button", { class: "btn", testid: "trend-earlier", text: "\u25c0 Earlier", attrs: { type: "button" } });
    const later = h("button", { class: "btn", testid: "trend-later", text: "Later \u25b6", attrs: { type: "button" } });
    earlier.addEventListener("click", () => void this.load(...panRange(this.from, this.to, -1, this.end(), this.stay?.start)));
    later.addEventListener("click", () => void this.load(...panRange(this.from, this.to, 1, this.end())));

    const params = h("div", { class: "trend-params", attrs: { role: "group", "aria-label": "Parameters" } });
    for (const code of TREND_CODES) {
      const box = h("input", { testid: `trend-param-${code}`, attrs: { type: "checkbox", value: String(code) } });
      box.checked = this.codes.includes(code);
      box.addEventListener("change", () => {
        const chosen = [...params.querySelectorAll<HTMLInputElement>("input:checked")].map((i) => Number(i.value));
        if (chosen.length === 0) {
          box.checked = true; // at least one parameter
          return;
        }
        this.codes = chosen;
        void this.load(this.from, this.to);
      });
      const chip = h("label", { class: "trend-param" }, box, h("span", { text: mdcLabel(code) }));
      chip.style.setProperty("--param-color", seriesColor(code));
      params.append(chip);
    }

    this.status = h("span", { class: "trend-status", testid: "trend-status", attrs: { role: "status" } });
    this.error = h("div", { class: "command-error", testid: "trend-error", attrs: { role: "alert" } });
    this.error.hidden = true;
    this.chart = h("div", { class: "trend-chart", testid: "trend-chart" });
    this.marks = h("ol", { class: "trend-marks", testid: "trend-marks" });
    const tabBar = h("div", { class: "trend-tabs", attrs: { role: "tablist" } });
    const tabNames: ["chart" | "flowsheet", string][] = this.deps.flowsheet ? [["chart", "Chart"], ["flowsheet", "Flowsheet"]] : [];
    for (const [id, label] of tabNames) {
      const b = h("button", { class: "btn", testid: `trend-tab-${id}`, text: label, attrs: { type: "button", role: "tab" } });
      b.addEventListener("click", () => this.showTab(id));
      this.tabs.set(id, b);
      tabBar.append(b);
    }
    this.chartPane = h("div", { class: "trend-chart-pane" }, params, this.chart, h("div", { class: "trend-marks-box" }, h("h3", { text: "Events" }), this.marks));
    this.flowPane = h("div", { class: "flowsheet-pane", testid: "flowsheet" });
    this.flowPane.hidden = true;
    this.root = h(
      "div",
      { class: "trends", testid: stay ? `trends-stay-${stay.admission}` : `trends-${bed}` },
      h("div", { class: "trend-head" }, h("h2", { text: title }), ranges, h("span", { class: "spacer" }), earlier, later),
      h(
        "div",
        { class: "trend-sub" },
        tabBar,
        stay ? h("span", { class: "stay-span", testid: "stay-span", text: `Stay ${formatDateTime(stay.start)} \u2013 ${stay.end === null ? "now (admitted)" : formatDateTime(stay.end)}` }) : null,
        this.status,
      ),
      this.error,
      this.chartPane,
      this.flowPane,
    );
    this.markTab();
  }

  /** The end of "the last N hours": the stay's discharge, else the core's now. */
  private end(): number {
    return this.stay?.end ?? this.deps.now();
  }

  private markTab(): void {
    for (const [id, b] of this.tabs) {
      b.classList.toggle("is-active", id === this.tab);
      b.setAttribute("aria-selected", String(id === this.tab));
    }
  }

  /** Chart or flowsheet of the same range. */
  showTab(tab: "chart" | "flowsheet"): void {
    this.tab = tab;
    this.markTab();
    this.chartPane.hidden = tab !== "chart";
    this.flowPane.hidden = tab !== "flowsheet";
    // The status line words the chart (means or every sample); the flowsheet has its own caption.
    this.status.hidden = tab !== "chart";
    if (tab === "flowsheet") void this.loadFlowsheet();
    // A range changed under the flowsheet was drawn into a hidden (zero-width) pane: draw it again.
    else if (this.to > this.from) void this.load(this.from, this.to);
  }

  private async loadFlowsheet(): Promise<void> {
    const flowsheet = this.deps.flowsheet;
    if (!flowsheet) return;
    const seq = ++this.flowSeq;
    const { from, to } = this;
    this.flowPane.dataset.loading = "true";
    this.flowPane.replaceChildren(h("p", { class: "trend-status", text: "Loading the flowsheet\u2026" }));
    try {
      const view = await flowsheet({
        bed: this.bed,
        ...(this.stay ? { admission: this.stay.admission } : {}),
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
      });
      if (seq !== this.flowSeq) return;
      this.flowPane.replaceChildren(flowsheetTable(view));
      this.flowPane.dataset.from = String(Math.round(from));
      this.flowPane.dataset.to = String(Math.round(to));
      this.flowPane.dataset.columns = String(view.columns.length);
    } catch (e) {
      if (seq !== this.flowSeq) return;
      this.flowPane.replaceChildren(h("div", { class: "command-error", attrs: { role: "alert" }, text: `Flowsheet unavailable: ${commandErrorText(toCommandError(e))}` }));
    } finally {
      if (seq === this.flowSeq) delete this.flowPane.dataset.loading;
    }
  }

  /** The range on screen (ms since the epoch). */
  range(): { from: number; to: number } {
    return { from: this.from, to: this.to };
  }

  /** Fetches and draws `[from, to]` (ms); the flowsheet too while it is shown. */
  async load(from: number, to: number): Promise<void> {
    const seq = ++this.seq;
    this.from = from;
    this.to = to;
    for (const r of TREND_RANGES) this.rangeButtons.get(r.id)!.classList.toggle("is-active", Math.abs(to - from - r.ms) < 1000 && Math.abs(this.end() - to) < 60_000);
    if (this.tab === "flowsheet") void this.loadFlowsheet();
    setText(this.status, "Loading\u2026");
    this.chart.dataset.loading = "true";
    // Issue 15's figure: from the click (or drag) to the frame that shows the view.
    const started = performance.now();
    delete this.chart.dataset.loadMs;
    const width = Math.max(300, this.chart.clientWidth || 900);
    try {
      const view = await this.deps.trend({
        bed: this.bed,
        ...(this.stay ? { admission: this.stay.admission } : {}),
        codes: this.codes,
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        points: Math.min(2000, Math.round(width)),
      });
      const UPlot = await loadUPlot();
      if (seq !== this.seq) return;
      this.error.hidden = true;
      this.draw(UPlot, view);
      setText(this.status, trendStatus(view, from, to));
      requestAnimationFrame(() => {
        if (seq === this.seq) this.chart.dataset.loadMs = String(Math.round(performance.now() - started));
      });
    } catch (e) {
      if (seq !== this.seq) return;
      setText(this.status, "");
      setText(this.error, `Trend unavailable: ${commandErrorText(toCommandError(e))}`);
      this.error.hidden = false;
    } finally {
      if (seq === this.seq) delete this.chart.dataset.loading;
    }
  }

  /** Limit bands: the bed's current limits; none for a stay (they were another time's). */
  private limits(): ParameterLimit[] {
    return this.stay ? [] : this.deps.limitsOf(this.bed);
  }

  private draw(UPlot: typeof uPlot, view: TrendView): void {
    const data = alignSeries(view) as uPlot.AlignedData;
    const units = [...new Set(view.series.map((s) => s.unit || "?"))];
    const scales: uPlot.Scales = { x: { time: true, auto: false, range: () => [this.from, this.to] } };
    const limits = this.limits();
    for (const u of units) {
      // The scale shows the limits of its parameters too: a band off screen tells nothing.
      const ls = view.series
        .filter((s) => (s.unit || "?") === u)
        .map((s) => limits.find((x) => PARAMETER_MDC[x.parameter] === s.code)?.limit)
        .filter((l) => l !== undefined);
      const lo = ls.map((l) => l.low ?? l.critical_low).filter((v): v is number => v !== null);
      const hi = ls.map((l) => l.high ?? l.critical_high).filter((v): v is number => v !== null);
      scales[u] = {
        auto: true,
        range: (_u, min, max) =>
          rangeWithLimits(min, max, lo.length ? Math.min(...lo) : null, hi.length ? Math.max(...hi) : null) ?? [0, 1],
      };
    }
    const axisColor = "#8b949e";
    const grid = { stroke: "#30363d", width: 1 };
    const axes: uPlot.Axis[] = [{ stroke: axisColor, grid, ticks: grid, values: (_u, splits) => timeTicks(splits, this.to - this.from) }];
    units.forEach((u, i) =>
      axes.push({
        scale: u,
        label: displayUnit(u),
        stroke: axisColor,
        side: i === 1 ? 1 : 3,
        show: i < 2,
        grid: { ...grid, show: i === 0 },
        ticks: grid,
      }),
    );
    const series: uPlot.Series[] = [
      { label: "Time", value: (_u, v) => (v == null ? "--" : formatDateTime(v)) },
      ...view.series.map((s) => ({
        label: `${mdcLabel(s.code)} (${displayUnit(s.unit)})`,
        scale: s.unit || "?",
        stroke: seriesColor(s.code),
        width: 2,
        spanGaps: false,
        points: { show: s.raw && s.t.length < 150 },
      })),
    ];
    const width = Math.max(300, this.chart.clientWidth || 900);
    const height = Math.max(220, Math.round(window.innerHeight * 0.45));
    this.plot?.destroy();
    this.chart.replaceChildren();
    this.plot = new UPlot(
      {
        width,
        height,
        ms: 1,
        scales,
        axes,
        series,
        cursor: { drag: { x: true, y: false, setScale: false } },
        hooks: {
          setSelect: [
            (u) => {
              if (u.select.width < 3) return;
              const [a, b] = snapSelection(u.select.left, u.select.left + u.select.width, u.bbox.width / (window.devicePixelRatio || 1), this.from, this.to);
              u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
              void this.load(...zoomRange(a, b));
            },
          ],
          draw: [(u) => this.drawOverlays(u, view)],
        },
      },
      data,
      this.chart,
    );
    // For tests and for anyone inspecting the page: what is drawn.
    this.chart.dataset.from = String(Math.round(this.from));
    this.chart.dataset.to = String(Math.round(this.to));
    this.chart.dataset.series = view.series.map((s) => s.code).join(" ");
    this.chart.dataset.raw = String(view.series.every((s) => s.raw));
    this.chart.dataset.runs = view.series.map((s) => lineRuns(s.value)).join(" ");
    this.chart.dataset.points = view.series.map((s) => s.value.filter((v) => v !== null).length).join(" ");
    this.listMarks(view);
  }

  /** Limit bands, the min–max range of summarised intervals, special values and event marks. */
  private drawOverlays(u: uPlot, view: TrendView): void {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const dpr = window.devicePixelRatio || 1;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    const limits = this.limits();
    for (const s of view.series) {
      const scale = s.unit || "?";
      const color = seriesColor(s.code);
      const l = limits.find((x) => PARAMETER_MDC[x.parameter] === s.code)?.limit;
      if (l) {
        const lo = l.low ?? l.critical_low;
        const hi = l.high ?? l.critical_high;
        const y = (v: number) => u.valToPos(v, scale, true);
        if (lo !== null && hi !== null) {
          ctx.fillStyle = color + "14"; // the in-limits band, faint
          ctx.fillRect(left, y(hi), width, y(lo) - y(hi));
        }
        ctx.strokeStyle = color + "99";
        ctx.setLineDash([6 * dpr, 4 * dpr]);
        ctx.lineWidth = dpr;
        for (const v of [lo, hi]) {
          if (v === null) continue;
          ctx.beginPath();
          ctx.moveTo(left, y(v));
          ctx.lineTo(left + width, y(v));
          ctx.stroke();
        }
        ctx.setLineDash([]);
      }
      if (!s.raw) {
        // Each interval's range: a dip inside an hour still shows on a 7-day view.
        ctx.strokeStyle = color + "55";
        ctx.lineWidth = Math.max(1, 2 * dpr);
        ctx.beginPath();
        s.t.forEach((t, i) => {
          const mn = s.min[i];
          const mx = s.max[i];
          if (mn == null || mx == null) return;
          const x = u.valToPos(t, "x", true);
          ctx.moveTo(x, u.valToPos(mn, scale, true));
          ctx.lineTo(x, u.valToPos(mx, scale, true) - 0.5);
        });
        ctx.stroke();
      }
      ctx.fillStyle = color;
      ctx.font = `${12 * dpr}px sans-serif`;
      for (const t of s.special) ctx.fillText("\u00d7", u.valToPos(t, "x", true) - 3 * dpr, top + height - 4 * dpr);
    }
    ctx.lineWidth = Math.max(1, 1.5 * dpr);
    for (const m of view.marks) {
      const x = u.valToPos(m.t, "x", true);
      ctx.strokeStyle = markColor(m);
      ctx.beginPath();
      // Alarms cross the whole chart; a NEWS2 change is a tick at the top;
      // a nurse's entry a tick at the bottom under a small triangle (markSpan).
      const span = markSpan(m.kind);
      const tick = 10 * dpr;
      ctx.setLineDash(markDash(m.kind).map((d) => d * dpr));
      ctx.moveTo(x, span === "bottom" ? top + height - tick : top);
      ctx.lineTo(x, span === "top" ? top + tick : top + height);
      ctx.stroke();
      ctx.setLineDash([]);
      const caption = markCaption(m.kind);
      if (caption) {
        // Canvas text: a device's name never reaches markup (it is in the list, as text).
        ctx.fillStyle = ctx.strokeStyle;
        ctx.font = `${10 * dpr}px sans-serif`;
        ctx.fillText(caption, x + 3 * dpr, top + 11 * dpr);
      }
      if (span === "bottom") {
        const r = 4 * dpr;
        ctx.fillStyle = ctx.strokeStyle;
        ctx.beginPath();
        ctx.moveTo(x, top + height - tick - 2 * r);
        ctx.lineTo(x - r, top + height - tick);
        ctx.lineTo(x + r, top + height - tick);
        ctx.closePath();
        ctx.fill();
      }
    }
    ctx.restore();
  }

  private listMarks(view: TrendView): void {
    const items = view.marks.slice(-MARKS_LISTED).map((m) => {
      const dot = h("span", { class: "trend-mark-dot" });
      dot.style.background = markColor(m);
      return h(
        "li",
        { class: "trend-mark", testid: "trend-mark", attrs: { "data-kind": m.kind, "data-priority": m.priority ?? "" } },
        dot,
        h("time", { text: formatDateTime(m.t) }),
        h("span", { class: "trend-mark-kind", text: markKindText(m.kind) }),
        h("span", { text: m.label }),
      );
    });
    this.marks.replaceChildren(...items);
    if (items.length === 0) this.marks.append(h("li", { class: "trend-mark-none", text: "No alarm, NEWS2, nurse-entry or device-change events in this range." }));
  }
}
