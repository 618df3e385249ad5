// DOM for the monitor. Each view is built once and keeps references to the
// elements it updates; update() writes only text/classes that changed.
// All decisions about what a value means live in state.ts; this file only shows them.

import type { AppInfo, BedView, DeviceView } from "./contract";
import { MDC, defaultUnit } from "./codes";
import { h, setAttr, setClass, setHidden, setText } from "./dom";
import {
  NO_VALUE,
  categoryText,
  formatAge,
  formatBattery,
  formatHm,
  formatHms,
  formatOffset,
  isLowBattery,
  linkStateText,
} from "./format";
import {
  type FrameContext,
  type NibpModel,
  type NumericModel,
  type WardState,
  bedDevices,
  frameContext,
  heartRateModel,
  nibpModel,
  numericModel,
  temperatureModel,
} from "./state";

export interface Actions {
  openBed(bed: string): void;
  back(): void;
  admit(bed: string): void;
  discharge(bed: string): void;
}

type Kind = "hr" | "spo2" | "rr" | "temp";

function staleText(ageMs: number | null): string {
  return ageMs === null ? "STALE" : `STALE ${formatAge(ageMs)}`;
}

// ------------------------------------------------------------------ numerics

/** One numeric box: label + unit, the big value, a STALE badge, a note line. */
class NumericBox {
  readonly root: HTMLDivElement;
  private readonly label: HTMLSpanElement;
  private readonly unit: HTMLSpanElement;
  private readonly sim: HTMLSpanElement;
  private readonly value: HTMLDivElement;
  private readonly stale: HTMLSpanElement;
  private readonly note: HTMLSpanElement;

  constructor(
    kind: Kind,
    private readonly bed: string,
    initialLabel: string,
    initialUnit: string,
  ) {
    this.label = h("span", { class: "num-label", text: initialLabel });
    this.unit = h("span", { class: "num-unit", text: initialUnit });
    this.sim = h("span", { class: "sim-tag", text: "SIM" });
    this.sim.hidden = true;
    this.value = h("div", { class: "num-value", testid: `${kind}-${bed}`, text: NO_VALUE });
    this.stale = h("span", { class: "stale-badge" });
    this.stale.hidden = true;
    this.note = h("span", { class: "num-note" });
    this.root = h(
      "div",
      { class: `num num-${kind} is-absent` },
      h("div", { class: "num-head" }, this.label, this.unit, this.sim),
      this.value,
      h("div", { class: "num-foot" }, this.stale, this.note),
    );
  }

  update(m: NumericModel): void {
    setText(this.label, m.label);
    setText(this.unit, m.unit);
    setText(this.value, m.text);
    setHidden(this.sim, !m.simulated);
    setClass(this.root, "is-absent", m.status === "absent");
    setClass(this.root, "is-special", m.status === "special");
    setClass(this.root, "is-technical", m.status === "technical");
    setClass(this.root, "is-fallback", m.mdc === MDC.PR_OXIMETER);
    setClass(this.root, "is-stale", m.stale);
    setHidden(this.stale, !m.stale);
    setAttr(this.stale, "data-testid", m.stale ? `stale-${this.bed}-${m.mdc}` : null);
    if (m.stale) setText(this.stale, staleText(m.ageMs));
    setText(this.note, m.note);
    setAttr(this.value, "data-status", m.status);
  }
}

/** NIBP: "sys/dia" big, "(mean)" smaller, and when it was measured. */
class NibpBox {
  readonly root: HTMLDivElement;
  private readonly unit: HTMLSpanElement;
  private readonly sim: HTMLSpanElement;
  private readonly value: HTMLSpanElement;
  private readonly mean: HTMLSpanElement;
  private readonly when: HTMLSpanElement;
  private readonly stale: HTMLSpanElement;
  private readonly note: HTMLSpanElement;

  constructor(private readonly bed: string) {
    this.unit = h("span", { class: "num-unit", text: defaultUnit(MDC.NIBP_SYS) });
    this.sim = h("span", { class: "sim-tag", text: "SIM" });
    this.sim.hidden = true;
    this.when = h("span", { class: "num-when", testid: `nibp-time-${bed}` });
    this.value = h("span", { class: "num-value", testid: `nibp-${bed}`, text: NO_VALUE });
    this.mean = h("span", { class: "num-mean", testid: `nibp-mean-${bed}` });
    this.stale = h("span", { class: "stale-badge" });
    this.stale.hidden = true;
    this.note = h("span", { class: "num-note" });
    this.root = h(
      "div",
      { class: "num num-nibp is-absent" },
      h("div", { class: "num-head" }, h("span", { class: "num-label", text: "NIBP" }), this.unit, this.sim, this.when),
      h("div", { class: "num-row" }, this.value, this.mean),
      h("div", { class: "num-foot" }, this.stale, this.note),
    );
  }

  update(m: NibpModel): void {
    setText(this.unit, m.unit);
    setText(this.value, m.text);
    setText(this.mean, m.meanText);
    setHidden(this.sim, !m.simulated);
    setText(this.when, m.receivedMs === null ? "" : `${formatHm(m.receivedMs)}${m.ageMs === null ? "" : ` \u00b7 ${formatAge(m.ageMs)} ago`}`);
    setClass(this.root, "is-absent", m.status === "absent");
    setClass(this.root, "is-special", m.status === "special");
    setClass(this.root, "is-technical", m.status === "technical");
    setClass(this.root, "is-stale", m.stale);
    setHidden(this.stale, !m.stale);
    // One marker for the measurement, keyed by the systolic code.
    setAttr(this.stale, "data-testid", m.stale ? `stale-${this.bed}-${MDC.NIBP_SYS}` : null);
    if (m.stale) setText(this.stale, staleText(m.ageMs));
    setText(this.note, m.note);
    setAttr(this.value, "data-status", m.status);
  }
}

/** The five numerics of one bed, in either the tile or the detail view. */
class NumericPanel {
  readonly root: HTMLDivElement;
  private readonly hr: NumericBox;
  private readonly spo2: NumericBox;
  private readonly rr: NumericBox;
  private readonly nibp: NibpBox;
  private readonly temp: NumericBox;

  constructor(private readonly bed: string, cls: string) {
    this.hr = new NumericBox("hr", bed, "HR", "/min");
    this.spo2 = new NumericBox("spo2", bed, "SpO2", "%");
    this.rr = new NumericBox("rr", bed, "RR", "/min");
    this.nibp = new NibpBox(bed);
    this.temp = new NumericBox("temp", bed, "Temp", "°C");
    this.root = h("div", { class: cls }, this.hr.root, this.spo2.root, this.rr.root, this.nibp.root, this.temp.root);
  }

  update(state: WardState, ctx: FrameContext): void {
    this.hr.update(heartRateModel(state, this.bed, ctx));
    this.spo2.update(numericModel(state, this.bed, MDC.SPO2, ctx));
    this.rr.update(numericModel(state, this.bed, MDC.RR, ctx));
    this.nibp.update(nibpModel(state, this.bed, ctx));
    this.temp.update(temperatureModel(state, this.bed, ctx));
  }
}

// ------------------------------------------------------------------ devices

const SHORT_KIND: Record<string, string> = {
  heart_rate_strap: "HR strap",
  pulse_oximeter: "Oximeter",
  blood_pressure_cuff: "NIBP cuff",
  thermometer: "Thermometer",
  respiration_sensor: "Resp sensor",
};

interface Chip {
  root: HTMLSpanElement;
  state: HTMLSpanElement;
  battery: HTMLSpanElement;
  technical: HTMLSpanElement;
  sim: HTMLSpanElement;
}

/** Per-device chips on a tile: name, link state, battery, technical condition. */
class DeviceChips {
  readonly root = h("div", { class: "chips" });
  private readonly chips = new Map<string, Chip>();

  constructor(private readonly bed: string) {}

  private create(d: DeviceView): Chip {
    const id = `${this.bed}-${d.device}`;
    const chip: Chip = {
      root: h("span", { class: "chip", testid: `device-${id}` }),
      state: h("span", { class: "chip-state", testid: `device-state-${id}` }),
      battery: h("span", { class: "chip-battery", testid: `device-battery-${id}` }),
      technical: h("span", { class: "chip-technical", testid: `device-technical-${id}` }),
      sim: h("span", { class: "sim-tag", text: "SIM" }),
    };
    chip.root.append(h("span", { class: "chip-name", text: SHORT_KIND[d.kind] ?? d.label }), chip.state, chip.battery, chip.technical, chip.sim);
    return chip;
  }

  update(devices: DeviceView[], ctx: FrameContext): void {
    const seen = new Set<string>();
    for (const d of devices) {
      seen.add(d.device);
      let chip = this.chips.get(d.device);
      if (!chip) {
        chip = this.create(d);
        this.chips.set(d.device, chip);
        this.root.append(chip.root);
      }
      updateDeviceParts(chip.root, chip.state, chip.battery, chip.technical, d, ctx);
      setHidden(chip.sim, d.source !== "simulated");
    }
    for (const [id, chip] of this.chips) {
      if (!seen.has(id)) {
        chip.root.remove();
        this.chips.delete(id);
      }
    }
  }
}

function updateDeviceParts(
  root: HTMLElement,
  stateEl: HTMLElement,
  batteryEl: HTMLElement,
  technicalEl: HTMLElement,
  d: DeviceView,
  ctx: FrameContext,
): void {
  // Without updates from the core we do not know the link state: say so.
  setAttr(root, "data-state", ctx.noData ? "unknown" : d.state);
  setText(stateEl, ctx.noData ? "no data" : linkStateText(d.state));
  const low = isLowBattery(d.battery);
  setText(batteryEl, d.battery === null ? "" : `BAT ${formatBattery(d.battery)}${low ? " LOW" : ""}`);
  setHidden(batteryEl, d.battery === null);
  setClass(batteryEl, "is-low", low);
  setText(technicalEl, d.technical ?? "");
  setHidden(technicalEl, !d.technical);
  setClass(root, "has-technical", !!d.technical);
}

// ------------------------------------------------------------------ patient header

class PatientHeader {
  /** Clipping wrapper (ellipsis) around the name; the test id is on the inner text span. */
  readonly nameBox: HTMLSpanElement;
  private readonly name: HTMLSpanElement;
  readonly category: HTMLSpanElement;
  readonly admit: HTMLButtonElement;

  constructor(bed: string, actions: Actions) {
    this.name = h("span", { testid: `patient-${bed}` });
    this.nameBox = h("span", { class: "patient-name" }, this.name);
    this.category = h("span", { class: "patient-category", testid: `category-${bed}` });
    this.admit = h("button", { class: "btn btn-admit", testid: `admit-${bed}`, text: "Admit", attrs: { type: "button" } });
    this.admit.addEventListener("click", (e) => {
      e.stopPropagation();
      actions.admit(bed);
    });
  }

  update(b: BedView): void {
    const a = b.admission;
    setText(this.name, a ? a.display_name : "Empty bed");
    setClass(this.nameBox, "is-empty", !a);
    setText(this.category, a ? categoryText(a.category) : "");
    setHidden(this.category, !a);
    setHidden(this.admit, !!a);
  }
}

// ------------------------------------------------------------------ overview

class BedTile {
  readonly root: HTMLDivElement;
  private readonly patient: PatientHeader;
  private readonly panel: NumericPanel;
  private readonly chips: DeviceChips;

  constructor(readonly bed: BedView, actions: Actions) {
    const id = bed.bed;
    this.patient = new PatientHeader(id, actions);
    this.panel = new NumericPanel(id, "tile-nums");
    this.chips = new DeviceChips(id);
    this.root = h(
      "div",
      { class: "tile", testid: `bed-tile-${id}`, attrs: { role: "button", tabindex: "0", "aria-label": `${bed.label}, open` } },
      h(
        "div",
        { class: "tile-head" },
        h("span", { class: "bed-label", text: bed.label }),
        this.patient.nameBox,
        this.patient.category,
        this.patient.admit,
      ),
      this.panel.root,
      this.chips.root,
    );
    this.root.addEventListener("click", () => actions.openBed(id));
    this.root.addEventListener("keydown", (e) => {
      if ((e.key === "Enter" || e.key === " ") && e.target === this.root) {
        e.preventDefault();
        actions.openBed(id);
      }
    });
  }

  update(state: WardState, ctx: FrameContext, b: BedView, bedsChanged: boolean): void {
    if (bedsChanged) {
      this.patient.update(b);
      setClass(this.root, "is-empty", !b.admission);
    }
    this.panel.update(state, ctx);
    this.chips.update(bedDevices(state, b.bed), ctx);
  }
}

class Overview {
  readonly root = h("div", { class: "overview", testid: "overview" });
  private tiles: BedTile[] = [];
  private ids = "";
  private cols = 0;
  private rows = 0;

  constructor(private readonly actions: Actions) {}

  /** Rebuild tiles only when the set/order of beds changed. */
  private sync(beds: BedView[]): void {
    const ids = beds.map((b) => b.bed).join("\u0000");
    if (ids === this.ids) return;
    this.ids = ids;
    this.root.replaceChildren();
    this.tiles = beds.map((b) => new BedTile(b, this.actions));
    for (const t of this.tiles) this.root.append(t.root);
    this.cols = 0;
    this.layout();
  }

  /** Choose columns/rows for the bed count and viewport; size fonts to the tile. */
  layout(): void {
    const n = Math.max(1, this.tiles.length);
    const w = this.root.clientWidth || window.innerWidth;
    const hgt = this.root.clientHeight || window.innerHeight;
    if (w === 0 || hgt === 0) return;
    // Pick the column count that gives the largest numerics.
    const gap = 8;
    let cols = 1;
    let rows = n;
    let fs = 0;
    for (let c = 1; c <= n; c++) {
      const r = Math.ceil(n / c);
      const tileW = (w - gap * (c - 1)) / c;
      const tileH = (hgt - gap * (r - 1)) / r;
      const f = Math.min(tileW / 50, tileH / 22);
      if (f > fs) {
        fs = f;
        cols = c;
        rows = r;
      }
    }
    fs = Math.max(8, fs);
    if (cols !== this.cols || rows !== this.rows) {
      this.cols = cols;
      this.rows = rows;
      this.root.style.setProperty("--cols", String(cols));
      this.root.style.setProperty("--rows", String(rows));
    }
    this.root.style.setProperty("--fs", `${fs.toFixed(2)}px`);
  }

  update(state: WardState, ctx: FrameContext, bedsChanged: boolean): void {
    if (bedsChanged) this.sync(state.beds);
    for (let i = 0; i < this.tiles.length; i++) this.tiles[i].update(state, ctx, state.beds[i], bedsChanged);
  }
}

// ------------------------------------------------------------------ single bed

interface DeviceRow {
  root: HTMLTableRowElement;
  label: HTMLTableCellElement;
  state: HTMLSpanElement;
  stateCell: HTMLTableCellElement;
  battery: HTMLSpanElement;
  offset: HTMLTableCellElement;
  lastData: HTMLTableCellElement;
  technical: HTMLSpanElement;
  source: HTMLTableCellElement;
}

class DetailView {
  readonly root: HTMLDivElement;
  private readonly patient: PatientHeader;
  private readonly discharge: HTMLButtonElement;
  private readonly mrn: HTMLSpanElement;
  private readonly dob: HTMLSpanElement;
  private readonly admitted: HTMLSpanElement;
  private readonly info: HTMLDivElement;
  private readonly panel: NumericPanel;
  private readonly tbody = h("tbody");
  private readonly rows = new Map<string, DeviceRow>();

  constructor(readonly bed: BedView, actions: Actions) {
    const id = bed.bed;
    this.patient = new PatientHeader(id, actions);
    this.discharge = h("button", { class: "btn btn-discharge", testid: `discharge-${id}`, text: "Discharge", attrs: { type: "button" } });
    this.discharge.addEventListener("click", () => actions.discharge(id));
    const back = h("button", { class: "btn btn-back", testid: "back", text: "\u2190 Back", attrs: { type: "button", title: "Back to all beds (Esc)" } });
    back.addEventListener("click", () => actions.back());
    this.mrn = h("span", { testid: `mrn-${id}` });
    this.dob = h("span", { testid: `dob-${id}` });
    this.admitted = h("span", { testid: `admitted-${id}` });
    this.info = h(
      "div",
      { class: "detail-info" },
      h("span", { class: "k", text: "MRN" }),
      this.mrn,
      h("span", { class: "k", text: "DOB" }),
      this.dob,
      h("span", { class: "k", text: "Admitted" }),
      this.admitted,
    );
    this.panel = new NumericPanel(id, "detail-nums");
    const table = h(
      "table",
      { class: "device-table", testid: `devices-${id}` },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...["Device", "ID", "State", "Battery", "Clock offset", "Last data", "Condition", "Source"].map((t) => h("th", { text: t })),
        ),
      ),
      this.tbody,
    );
    this.root = h(
      "div",
      { class: "detail", testid: `detail-${id}` },
      h(
        "div",
        { class: "detail-head" },
        back,
        h("span", { class: "bed-label", text: bed.label }),
        this.patient.nameBox,
        this.patient.category,
        this.info,
        h("span", { class: "spacer" }),
        this.patient.admit,
        this.discharge,
      ),
      this.panel.root,
      h("div", { class: "detail-devices" }, table),
    );
  }

  private row(d: DeviceView): DeviceRow {
    let r = this.rows.get(d.device);
    if (r) return r;
    const id = `${this.bed.bed}-${d.device}`;
    r = {
      root: h("tr", { testid: `device-row-${id}` }),
      label: h("td"),
      state: h("span", { class: "chip-state", testid: `device-row-state-${id}` }),
      stateCell: h("td", { class: "chip" }),
      battery: h("span", { class: "chip-battery" }),
      offset: h("td"),
      lastData: h("td"),
      technical: h("span", { class: "chip-technical" }),
      source: h("td"),
    };
    r.stateCell.append(r.state);
    r.root.append(
      r.label,
      h("td", { class: "mono", text: d.device }),
      r.stateCell,
      h("td", { class: "chip" }, r.battery),
      r.offset,
      r.lastData,
      h("td", { class: "chip" }, r.technical),
      r.source,
    );
    this.rows.set(d.device, r);
    this.tbody.append(r.root);
    return r;
  }

  update(state: WardState, ctx: FrameContext, b: BedView, bedsChanged: boolean): void {
    if (bedsChanged) {
      this.patient.update(b);
      const a = b.admission;
      setHidden(this.discharge, !a);
      setHidden(this.info, !a);
      setText(this.mrn, a ? a.mrn : "");
      setText(this.dob, a ? a.date_of_birth : "");
      setText(this.admitted, a ? formatHm(Date.parse(a.admitted_at)) + " " + a.admitted_at.slice(0, 10) : "");
    }
    this.panel.update(state, ctx);
    const devices = bedDevices(state, b.bed);
    const seen = new Set<string>();
    for (const d of devices) {
      seen.add(d.device);
      const r = this.row(d);
      setText(r.label, d.label);
      updateDeviceParts(r.stateCell, r.state, r.battery, r.technical, d, ctx);
      setText(r.offset, formatOffset(d.clock_offset_s));
      setText(
        r.lastData,
        d.last_data_ms === null ? "never" : ctx.coreNow === null ? "\u2014" : `${formatAge(ctx.coreNow - d.last_data_ms)} ago`,
      );
      setText(r.source, d.source);
      setClass(r.source, "is-sim", d.source === "simulated");
    }
    for (const [id, r] of this.rows) {
      if (!seen.has(id)) {
        r.root.remove();
        this.rows.delete(id);
      }
    }
  }
}

// ------------------------------------------------------------------ app shell

export class AppView {
  readonly root: HTMLDivElement;
  private readonly simBanner: HTMLDivElement;
  private readonly simText: HTMLSpanElement;
  private readonly version: HTMLSpanElement;
  private readonly keySource: HTMLSpanElement;
  private readonly clock: HTMLSpanElement;
  private readonly noData: HTMLDivElement;
  private readonly noDataDetail: HTMLSpanElement;
  private readonly error: HTMLDivElement;
  private readonly main: HTMLElement;
  private readonly overview: Overview;
  private detail: DetailView | null = null;
  private renderedBedsVersion = -1;

  constructor(private readonly actions: Actions) {
    this.simText = h("span", { class: "sim-text", text: "SIMULATED DEVICES" });
    this.simBanner = h("div", { class: "sim-banner", testid: "sim-banner", attrs: { role: "status" } }, this.simText);
    this.simBanner.hidden = true;
    this.version = h("span", { class: "version" });
    this.keySource = h("span", { class: "key-source", testid: "key-source" });
    this.clock = h("span", { class: "clock", testid: "clock" });
    this.noDataDetail = h("span", { class: "nodata-detail" });
    this.noData = h(
      "div",
      { class: "nodata-banner", testid: "nodata-banner", attrs: { role: "alert" } },
      h("span", { class: "nodata-text", text: "NO DATA FROM MONITOR CORE" }),
      this.noDataDetail,
    );
    this.noData.hidden = true;
    this.error = h("div", { class: "error-banner", testid: "error-banner", attrs: { role: "alert" } });
    this.error.hidden = true;
    this.overview = new Overview(actions);
    this.main = h("main", { class: "main" }, this.overview.root);
    this.root = h(
      "div",
      { class: "app" },
      h(
        "header",
        { class: "header" },
        h("span", { class: "brand", text: "Vigil" }),
        this.version,
        this.simBanner,
        h("span", { class: "spacer" }),
        this.keySource,
        this.clock,
      ),
      this.noData,
      this.error,
      this.main,
    );
    window.addEventListener("resize", () => this.overview.layout());
  }

  setAppInfo(info: AppInfo | null): void {
    if (!info) {
      // Unknown mode must not look like "real": say so, loudly.
      setText(this.simText, "MODE UNKNOWN \u2014 cannot confirm devices are real");
      setHidden(this.simBanner, false);
      return;
    }
    setText(this.version, `v${info.version}`);
    setText(this.keySource, `key: ${info.key_source}`);
    const sim = info.mode === "simulated";
    setText(this.simText, sim ? `SIMULATED DEVICES${info.scenario ? ` \u00b7 scenario: ${info.scenario}` : ""}` : "");
    setHidden(this.simBanner, !sim);
  }

  setError(text: string | null): void {
    setText(this.error, text ?? "");
    setHidden(this.error, text === null);
  }

  get openBed(): string | null {
    return this.detail ? this.detail.bed.bed : null;
  }

  showBed(state: WardState, bed: string): void {
    const b = state.beds.find((x) => x.bed === bed);
    if (!b) return;
    this.detail = new DetailView(b, this.actions);
    // Only one view is in the document at a time, so test ids stay unique.
    this.main.replaceChildren(this.detail.root);
    this.renderedBedsVersion = -1;
  }

  showOverview(): void {
    if (!this.detail) return;
    this.detail = null;
    this.main.replaceChildren(this.overview.root);
    this.renderedBedsVersion = -1;
    this.overview.layout();
  }

  render(state: WardState, perfNow: number): void {
    const ctx = frameContext(state, perfNow);
    setText(this.clock, formatHms(Date.now()));
    setHidden(this.noData, !ctx.noData);
    if (ctx.noData) {
      setText(
        this.noDataDetail,
        ctx.hasData ? `last update ${formatAge(ctx.sinceDataMs)} ago \u2014 all values STALE` : "no update received yet",
      );
    }
    setClass(this.root, "no-data", ctx.noData);

    const bedsChanged = state.bedsVersion !== this.renderedBedsVersion;
    this.renderedBedsVersion = state.bedsVersion;

    if (this.detail) {
      const b = state.beds.find((x) => x.bed === this.detail!.bed.bed);
      if (!b) {
        this.showOverview();
        this.overview.update(state, ctx, true);
        return;
      }
      this.detail.update(state, ctx, b, bedsChanged);
    } else {
      this.overview.update(state, ctx, bedsChanged);
    }
  }
}
