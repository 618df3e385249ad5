// DOM for the monitor. Each view is built once and keeps references to the
// elements it updates; update() writes only text/classes that changed.
// All decisions about what a value means live in state.ts; this file only shows them.

import type { ActiveAlarm, AdmissionView, AlarmRecord, AppInfo, BedAlarmState, BedView, DeviceView, News2, Priority } from "./contract";
import { type SyncModel, clockModel } from "./sync";
import { MDC, defaultUnit } from "./codes";
import {
  type NumericBoxKind,
  type SeenAlarm,
  alarmBarModel,
  alarmLogRows,
  alarmStatusText,
  alarmTitle,
  flashHzText,
  flashPeriodS,
  flashPeriodValue,
  isTechnical,
  limitTextForMdc,
  shortAlarmText,
  numericAlarms,
  pauseModel,
  priorityShape,
  priorityText,
  sortAlarms,
} from "./alarms";
import {
  NEWS2_PARAMS,
  NEWS2_PARAM_LABEL,
  appendHistory,
  badgeRisk,
  badgeText,
  hasScore,
  incompleteText,
  isIncomplete,
  responseText,
  subScoreOf,
  subScoreText,
  trendGeometry,
  trendMarks,
} from "./news2";
import { flashingClasses, h, setAttr, setClass, setClassName, setCustomProperty, setHidden, setText } from "./dom";
import {
  NO_VALUE,
  categoryText,
  deviceTrustText,
  formatAge,
  formatBattery,
  formatDeviceInfo,
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
  bedAlarms,
  bedDevices,
  bedNews2,
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
  /** Pause alarm audio at a bed (time-limited, engine preset). */
  pause(bed: string): void;
  editLimits(bed: string): void;
  /** Trends of the bed over 1 h … 7 days. */
  openTrends(bed: string): void;
  /** The list of admissions, current and past (clinicians review a stay from it). */
  openAdmissions(): void;
  /**
   * Acknowledge alarms the screen showed when the button was clicked: one ([its id]),
   * or every one drawn in the bar that needed a response ("Acknowledge all").
   */
  acknowledge(bed: string, seen: SeenAlarm[]): void;
  pauseAll(): void;
  enterNews2(bed: string): void;
  addDevice(bed: string): void;
  removeDevice(bed: string, device: string): void;
  /** Bond with a device whose link is not bonded (BlueZ Pair()). */
  pairDevice(bed: string, device: string): void;
  loadAlarmLog(bed: string): Promise<AlarmRecord[]>;
  loadNews2History(bed: string): Promise<News2[]>;
  /** Open the sign-in dialog. */
  signIn(): void;
  signOut(): void;
  /** Ask for a reason and take break-glass emergency access. */
  breakGlass(): void;
  /** Set a shift PIN. */
  setPin(): void;
  enableAudio(): void;
  /** Open the list of readings the FHIR server refused. */
  openDeadLetters(): void;
  /** Open About: version, mode, key source, data directory, site configuration files. */
  openAbout(): void;
  /** Search the FHIR server by the admission's MRN and link the bed's admission. */
  linkFhir(bed: string): void;
}

/** What the screen knows about FHIR: configured at all, and links made (or reported by the core). */
export interface FhirFacts {
  configured: boolean;
  /** admission id -> "Patient/<id>" linked in this session. */
  linked: ReadonlyMap<string, string>;
}

/** The FHIR Patient an admission is linked to, when known. */
export function fhirLinkOf(a: AdmissionView, fhir: FhirFacts): string | null {
  return a.fhir_patient ?? fhir.linked.get(a.id) ?? null;
}

/** Per-frame alarm/sound facts computed by the caller (main.ts owns the audio). */
export interface AudioFacts {
  running: boolean;
  playing: Priority | null;
  stateText: string;
}

/** Clicks on controls inside a tile must not open the bed. */
function button(cls: string, testid: string, text: string, onClick: () => void, title?: string): HTMLButtonElement {
  const b = h("button", { class: `btn ${cls}`, testid, text, attrs: { type: "button", ...(title ? { title } : {}) } });
  b.addEventListener("click", (e) => {
    e.stopPropagation();
    onClick();
  });
  b.addEventListener("keydown", (e) => e.stopPropagation());
  return b;
}

function setFlash(el: HTMLElement, period: number | null): void {
  setCustomProperty(el, "--flash-period", flashPeriodValue(period));
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
  private readonly limits: HTMLSpanElement;

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
    this.limits = h("span", { class: "num-limits", attrs: { title: "Alarm limits" } });
    this.limits.hidden = true;
    this.value = h("div", { class: "num-value", testid: `${kind}-${bed}`, text: NO_VALUE });
    this.stale = h("span", { class: "stale-badge" });
    this.stale.hidden = true;
    this.note = h("span", { class: "num-note" });
    this.root = h(
      "div",
      { class: `num num-${kind} is-absent` },
      h("div", { class: "num-head" }, this.label, this.unit, this.sim, this.limits),
      this.value,
      h("div", { class: "num-foot" }, this.stale, this.note),
    );
  }

  /** The alarm limits beside the numeric, and its limit breach (flashing in the alarm colour). */
  updateAlarm(mdc: number, alarms: BedAlarmState | undefined, alarm: ActiveAlarm | undefined): void {
    const t = limitTextForMdc(alarms, mdc);
    setText(this.limits, t);
    setHidden(this.limits, !t);
    setAttr(this.limits, "data-testid", t ? `limits-${this.bed}-${mdc}` : null);
    updateNumericAlarm(this.root, alarm);
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
  private readonly limits: HTMLSpanElement;

  constructor(private readonly bed: string) {
    this.limits = h("span", { class: "num-limits", attrs: { title: "Systolic alarm limits" } });
    this.limits.hidden = true;
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
      h("div", { class: "num-head" }, h("span", { class: "num-label", text: "NIBP" }), this.unit, this.sim, this.limits, this.when),
      h("div", { class: "num-row" }, this.value, this.mean),
      h("div", { class: "num-foot" }, this.stale, this.note),
    );
  }

  updateAlarm(alarms: BedAlarmState | undefined, alarm: ActiveAlarm | undefined): void {
    const t = limitTextForMdc(alarms, MDC.NIBP_SYS);
    setText(this.limits, t ? `sys ${t}` : "");
    setHidden(this.limits, !t);
    setAttr(this.limits, "data-testid", t ? `limits-${this.bed}-${MDC.NIBP_SYS}` : null);
    updateNumericAlarm(this.root, alarm);
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

/** A numeric beyond its limit: frame and flash in the alarm's colour at its rate. */
function updateNumericAlarm(root: HTMLElement, alarm: ActiveAlarm | undefined): void {
  setAttr(root, "data-alarm", alarm ? alarm.priority : null);
  setClass(root, "in-alarm", !!alarm);
  setFlash(root, alarm ? flashPeriodS(alarm) : null);
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
    const hr = heartRateModel(state, this.bed, ctx);
    this.hr.update(hr);
    this.spo2.update(numericModel(state, this.bed, MDC.SPO2, ctx));
    this.rr.update(numericModel(state, this.bed, MDC.RR, ctx));
    this.nibp.update(nibpModel(state, this.bed, ctx));
    this.temp.update(temperatureModel(state, this.bed, ctx));
    const a = bedAlarms(state, this.bed);
    const inAlarm: Map<NumericBoxKind, ActiveAlarm> = numericAlarms(a);
    this.hr.updateAlarm(hr.mdc, a, inAlarm.get("hr"));
    this.spo2.updateAlarm(MDC.SPO2, a, inAlarm.get("spo2"));
    this.rr.updateAlarm(MDC.RR, a, inAlarm.get("rr"));
    this.nibp.updateAlarm(a, inAlarm.get("nibp"));
    this.temp.updateAlarm(MDC.TEMP, a, inAlarm.get("temp"));
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
  trust: HTMLSpanElement;
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
      trust: h("span", { class: "chip-trust", testid: `device-trust-${id}` }),
      sim: h("span", { class: "sim-tag", text: "SIM" }),
    };
    chip.root.append(h("span", { class: "chip-name", text: SHORT_KIND[d.kind] ?? d.label }), chip.state, chip.battery, chip.technical, chip.trust, chip.sim);
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
      updateTrust(chip.trust, d);
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

/** Link security and refused data (core::trust): an unbonded link is labelled, never silently trusted. */
function updateTrust(el: HTMLElement, d: DeviceView): void {
  const text = deviceTrustText(d);
  setText(el, text);
  setHidden(el, text === "");
  setClass(el, "is-refused", d.refused !== null);
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

// ------------------------------------------------------------------ alarms

interface AlarmItem {
  root: HTMLDivElement;
  prio: HTMLSpanElement;
  inop: HTMLSpanElement;
  message: HTMLSpanElement;
  status: HTMLSpanElement;
  ack: HTMLButtonElement;
  /** The alarm as last drawn: what its Ack button acknowledges. */
  seen: SeenAlarm;
}

/**
 * A bed's alarm bar: active alarms highest first, each with priority as text + shape +
 * colour (flashing at the signal's rate), technical alarms as INOP, latched and
 * acknowledged marked; "Acknowledge all", "Pause audio" and the always-visible audio
 * state ("audio on" / "AUDIO PAUSED 1:43").
 */
class AlarmBar {
  readonly root: HTMLDivElement;
  private readonly list: HTMLDivElement;
  private readonly none: HTMLSpanElement;
  private readonly more: HTMLSpanElement;
  private readonly ackAll: HTMLButtonElement;
  private readonly pause: HTMLButtonElement;
  private readonly audio: HTMLSpanElement;
  private readonly items = new Map<number, AlarmItem>();
  /** What "Acknowledge all" covers: the alarms needing a response as last drawn. */
  private ackAllSeen: SeenAlarm[] = [];

  /** `maxShown`: how many alarms fit (tile); the rest are counted in "+N more". */
  constructor(
    private readonly bed: string,
    private readonly actions: Actions,
    private readonly maxShown: number,
    private readonly compact: boolean,
  ) {
    this.none = h("span", { class: "alarm-none", text: "No active alarms" });
    this.more = h("span", { class: "alarm-more" });
    this.more.hidden = true;
    this.list = h("div", { class: "alarm-list" }, this.none);
    // Sends the ids drawn at the last render, i.e. what was on screen at the click;
    // an alarm that arrived since is not on screen yet and is not covered.
    this.ackAll = button("btn-ack-all", `ack-all-${bed}`, "Acknowledge all", () => actions.acknowledge(bed, this.ackAllSeen.slice()));
    this.pause = button("btn-pause", `pause-${bed}`, "Pause audio", () => actions.pause(bed), "Pause alarm audio at this bed (time-limited)");
    this.audio = h("span", { class: "audio-status", testid: `audio-on-${bed}`, text: "audio on", attrs: { role: "status" } });
    this.root = h(
      "div",
      { class: "alarm-bar", testid: `alarm-bar-${bed}` },
      this.list,
      h(
        "div",
        { class: "alarm-controls" },
        this.audio,
        this.pause,
        this.ackAll,
        compact ? null : button("btn-limits", `limits-edit-${bed}`, "Limits\u2026", () => actions.editLimits(bed), "Change this patient's alarm limits"),
      ),
    );
  }

  private item(a: ActiveAlarm): AlarmItem {
    const existing = this.items.get(a.id);
    if (existing) return existing;
    const it: AlarmItem = {
      root: h("div", { class: "alarm", testid: `alarm-${this.bed}-${a.id}`, attrs: { role: "alert" } }),
      prio: h("span", { class: "alarm-prio" }),
      inop: h("span", { class: "alarm-inop", text: "INOP" }),
      message: h("span", { class: "alarm-msg" }),
      status: h("span", { class: "alarm-status" }),
      ack: button("btn-ack", `ack-${this.bed}-${a.id}`, "Ack", () => this.actions.acknowledge(this.bed, [{ ...it.seen }]), "Acknowledge this alarm"),
      seen: { id: a.id, priority: a.priority },
    };
    it.root.append(it.prio, it.inop, it.message, it.status, it.ack);
    this.items.set(a.id, it);
    return it;
  }

  /** `news2Incomplete`: the bed's latest NEWS2 total when it is only a lower bound, else null (see `shortAlarmText`). */
  update(s: BedAlarmState | undefined, coreNow: number | null, news2Incomplete: number | null = null): void {
    const model = alarmBarModel(s?.active ?? [], this.maxShown);
    const shown = model.shown;
    const seen = new Set<number>();
    let prev: Element | null = null;
    for (const a of shown) {
      seen.add(a.id);
      const it = this.item(a);
      it.seen = { id: a.id, priority: a.priority };
      const period = flashPeriodValue(a.acknowledged ? null : flashPeriodS(a));
      // Written whole (with the flash period's class), and only when it changes.
      setClassName(
        it.root,
        `alarm prio-${a.priority}${isTechnical(a) ? " is-technical" : ""}${a.latched ? " is-latched" : ""}${a.acknowledged ? " is-acked" : ""}${flashingClasses(period)}`,
      );
      setAttr(it.root, "data-priority", a.priority);
      setAttr(it.root, "data-flash-hz", flashHzText(a.signal.flash_hz));
      setAttr(it.root, "data-latched", String(a.latched));
      setAttr(it.root, "data-acknowledged", String(a.acknowledged));
      setAttr(it.root, "data-acknowledged-by", a.acknowledged_by ?? null);
      setAttr(it.root, "data-kind", a.kind.type);
      setText(it.prio, `${priorityShape(a.priority)} ${priorityText(a.priority)}`);
      setHidden(it.inop, !isTechnical(a));
      setText(it.message, this.compact ? shortAlarmText(a, news2Incomplete) : a.message || alarmTitle(a.kind));
      setAttr(it.message, "title", a.message || alarmTitle(a.kind));
      const st = alarmStatusText(a, this.compact);
      setText(it.status, st);
      setHidden(it.status, !st);
      // An acknowledged alarm whose condition persists needs no second acknowledgement.
      setHidden(it.ack, a.acknowledged && !a.latched);
      // Keep DOM order = display order, moving only what is out of place.
      const want: Element | null = prev ? prev.nextElementSibling : this.list.firstElementChild;
      if (want !== it.root) this.list.insertBefore(it.root, want);
      prev = it.root;
    }
    for (const [id, it] of this.items) {
      if (!seen.has(id)) {
        it.root.remove();
        this.items.delete(id);
      }
    }
    const total = shown.length + model.hiddenCount;
    setHidden(this.none, total > 0);
    const hiddenCount = model.hiddenCount;
    setText(this.more, hiddenCount > 0 ? `+${hiddenCount} more` : "");
    setHidden(this.more, hiddenCount <= 0);
    if (hiddenCount > 0) this.list.append(this.more);
    this.ackAllSeen = model.ackAll;
    setHidden(this.ackAll, model.ackAll.length === 0);
    setText(this.ackAll, model.ackAllText);
    setAttr(
      this.ackAll,
      "title",
      hiddenCount > 0 ? `Acknowledges the ${shown.length} alarms shown; open the bed to see the other ${hiddenCount}` : "Acknowledges the alarms shown",
    );

    const p = pauseModel(s, coreNow);
    setText(this.audio, p.paused ? `${p.text}${p.by && !this.compact ? ` (${p.by})` : ""}` : "\u266A audio on");
    setAttr(this.audio, "title", p.paused && p.by ? `Audio paused by ${p.by}` : null);
    setAttr(this.audio, "data-testid", p.paused ? `audio-paused-${this.bed}` : `audio-on-${this.bed}`);
    setClass(this.audio, "is-paused", p.paused);
    setClass(this.root, "has-alarms", total > 0);
  }
}

/** Highest alarm priority at a bed and whether it still needs a response (flashes). */
function bedSignal(s: BedAlarmState | undefined): { priority: Priority | null; period: number | null } {
  const alarms = sortAlarms(s?.active ?? []);
  if (alarms.length === 0) return { priority: null, period: null };
  const top = alarms[0];
  const unanswered = alarms.find((a) => a.priority === top.priority && (!a.acknowledged || a.latched));
  return { priority: top.priority, period: unanswered ? flashPeriodS(unanswered) : null };
}

// ------------------------------------------------------------------ NEWS2

/**
 * "NEWS2 5 MEDIUM" in the risk colour; incomplete: "NEWS2 \u2265 3" with no risk
 * word or colour (dashed, neutral) and "2 missing" beside it.
 */
class News2Badge {
  readonly root: HTMLSpanElement;
  private readonly main: HTMLSpanElement;
  private readonly incomplete: HTMLSpanElement;

  constructor(bed: string, cls = "") {
    this.main = h("span", { class: "news2-main", text: "NEWS2 --" });
    this.incomplete = h("span", { class: "news2-incomplete" });
    this.incomplete.hidden = true;
    this.root = h("span", { class: `news2-badge ${cls}`, testid: `news2-${bed}`, attrs: { title: "NEWS2 early warning score" } }, this.main, this.incomplete);
  }

  update(s: News2 | undefined): void {
    setText(this.main, badgeText(s));
    const inc = incompleteText(s);
    setText(this.incomplete, inc ? `\u26A0 ${inc}` : "");
    setHidden(this.incomplete, !inc);
    setAttr(this.root, "data-risk", badgeRisk(s));
    setAttr(this.root, "data-total", hasScore(s) ? String(s.total) : null);
    setAttr(this.root, "data-complete", hasScore(s) ? String(s.complete) : null);
    setAttr(this.root, "title", isIncomplete(s) ? "NEWS2 incomplete: the total is only a lower bound" : "NEWS2 early warning score");
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** The single-bed NEWS2 panel: sub-scores, total, risk, response, trend, entry button. */
class News2Panel {
  readonly root: HTMLDivElement;
  private readonly badge: News2Badge;
  private readonly response: HTMLDivElement;
  private readonly when: HTMLSpanElement;
  private readonly cells = new Map<string, HTMLTableCellElement>();
  private readonly chart: SVGSVGElement;
  private readonly chartNote: HTMLDivElement;
  private history: News2[] = [];
  private drawnKey = "";
  private shown: News2 | undefined;

  constructor(bed: string, actions: Actions) {
    this.badge = new News2Badge(bed, "news2-big");
    this.response = h("div", { class: "news2-response", testid: `news2-response-${bed}` });
    this.when = h("span", { class: "news2-when" });
    const tbody = h("tbody");
    for (const p of NEWS2_PARAMS) {
      const cell = h("td", { class: "news2-sub", testid: `news2-sub-${bed}-${p}` });
      this.cells.set(p, cell);
      tbody.append(h("tr", {}, h("th", { text: NEWS2_PARAM_LABEL[p] }), cell));
    }
    this.chart = svg("svg", { class: "news2-chart", viewBox: "0 0 300 70", preserveAspectRatio: "none", "data-testid": `news2-trend-${bed}` });
    this.chartNote = h("div", { class: "news2-chart-note" });
    const enter = button("btn-primary btn-news2-enter", `news2-enter-${bed}`, "Enter obs\u2026", () => actions.enterNews2(bed), "Enter NEWS2 observations (ACVPU, air/oxygen, manual values)");
    this.root = h(
      "div",
      { class: "news2-panel", testid: `news2-panel-${bed}` },
      h("div", { class: "news2-top" }, this.badge.root, h("span", { class: "spacer" }), enter),
      h("div", { class: "news2-response-row" }, this.response, this.when),
      h("table", { class: "news2-table" }, tbody),
      h("div", { class: "news2-trend" }, h("div", { class: "news2-trend-title" }, "NEWS2 trend ", this.chartNote), this.chart),
    );
    actions
      .loadNews2History(bed)
      .then((hist) => {
        // Keep scores that arrived live while loading.
        let merged = hist.slice();
        for (const s of this.history) if (!merged.some((x) => x.at === s.at)) merged = appendHistory(merged, s);
        this.history = merged;
        this.drawnKey = "";
      })
      .catch(() => {
        setText(this.chartNote, "Trend unavailable (history could not be loaded)");
      });
  }

  update(s: News2 | undefined): void {
    if (s && s !== this.shown) this.history = appendHistory(this.history, s);
    this.shown = s;
    this.badge.update(s);
    setText(this.response, responseText(s));
    setClass(this.response, "is-incomplete", isIncomplete(s));
    setText(this.when, s ? `scored ${formatHm(Date.parse(s.at))}` : "");
    for (const p of NEWS2_PARAMS) {
      const cell = this.cells.get(p)!;
      const sub = s ? subScoreOf(s, p) : null;
      setText(cell, sub ? subScoreText(sub) : "\u2014");
      setAttr(cell, "data-status", sub ? sub.status : null);
      setAttr(cell, "data-points", sub && sub.status === "scored" ? String(sub.points) : null);
    }
    this.drawChart();
  }

  private drawChart(): void {
    const last = this.history[this.history.length - 1];
    const key = `${this.history.length}|${last?.at ?? ""}`;
    if (key === this.drawnKey) return;
    this.drawnKey = key;
    const W = 300;
    const H = 70;
    const g = trendGeometry(this.history, W, H);
    const nodes: SVGElement[] = [
      svg("rect", { x: 0, y: 0, width: W, height: g.y7, class: "band-high" }),
      svg("rect", { x: 0, y: g.y7, width: W, height: g.y5 - g.y7, class: "band-medium" }),
      svg("rect", { x: 0, y: g.y5, width: W, height: H - g.y5, class: "band-low" }),
      svg("line", { x1: 0, x2: W, y1: g.y5, y2: g.y5, class: "band-line" }),
      svg("line", { x1: 0, x2: W, y1: g.y7, y2: g.y7, class: "band-line" }),
    ];
    if (g.points.length > 0) {
      nodes.push(svg("polyline", { points: g.points.map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" "), class: "trend-line" }));
    }
    // Every score marked: filled when complete, hollow when incomplete (a lower bound).
    const marks = trendMarks(g);
    for (const m of marks) {
      nodes.push(
        svg("circle", {
          cx: m.cx.toFixed(1),
          cy: m.cy.toFixed(1),
          r: m.last ? 3.5 : 2.2,
          class: `trend-point${m.hollow ? " is-incomplete" : ""}${m.last ? " trend-last" : ""}`,
        }),
      );
    }
    this.chart.replaceChildren(...nodes);
    const hollow = marks.filter((m) => m.hollow).length;
    setAttr(this.chart, "data-incomplete-points", String(hollow));
    setText(
      this.chartNote,
      g.fromMs === null
        ? "(no scores yet)"
        : `${formatHm(g.fromMs)}\u2013${formatHm(g.toMs!)} \u00b7 ${g.points.length} scores${hollow ? ` (\u25CB ${hollow} incomplete, \u2265)` : ""} \u00b7 lines at 5, 7`,
    );
  }
}

// ------------------------------------------------------------------ alarm log

class AlarmLogView {
  readonly root: HTMLDivElement;
  private readonly tbody = h("tbody");
  private readonly status: HTMLDivElement;
  private loading = false;
  private loadedAt = 0;
  private loadedFor: unknown = undefined;

  constructor(private readonly bed: string, private readonly actions: Actions) {
    this.status = h("div", { class: "log-status", testid: `alarm-log-status-${bed}` });
    const refresh = button("", `alarm-log-refresh-${bed}`, "Refresh", () => this.load());
    this.root = h(
      "div",
      { class: "alarm-log" },
      h("div", { class: "log-head" }, h("span", { class: "log-title", text: "Alarm log \u2014 last 24 h" }), this.status, refresh),
      h(
        "table",
        { class: "device-table log-table", testid: `alarm-log-${bed}` },
        h("thead", {}, h("tr", {}, ...["Time", "Priority", "Event", "Message", "By"].map((t) => h("th", { text: t })))),
        this.tbody,
      ),
    );
  }

  /** Reload while shown when the bed's alarm state changed (at most every 2 s). */
  maybeLoad(alarms: BedAlarmState | undefined, perfNow: number): void {
    if (this.loading) return;
    if (alarms !== this.loadedFor && perfNow - this.loadedAt > 2000) {
      this.loadedFor = alarms;
      this.load();
    }
  }

  load(): void {
    if (this.loading) return;
    this.loading = true;
    this.loadedAt = performance.now();
    setText(this.status, "loading\u2026");
    this.actions
      .loadAlarmLog(this.bed)
      .then((recs) => {
        const rows = alarmLogRows(recs);
        this.tbody.replaceChildren(
          ...rows.map((r) =>
            h(
              "tr",
              { attrs: r.priority ? { "data-priority": r.priority } : {} },
              h("td", { class: "mono", text: Number.isFinite(r.atMs) ? `${formatHms(r.atMs)}` : "" }),
              h("td", { class: `log-prio${r.priority ? ` prio-text-${r.priority}` : ""}`, text: r.priority ? `${priorityShape(r.priority)} ${priorityText(r.priority)}` : "\u2014" }),
              h("td", { text: r.event }),
              h("td", { class: "log-msg", text: r.message }),
              h("td", { text: r.by }),
            ),
          ),
        );
        setText(this.status, rows.length === 0 ? "no alarm events in the last 24 h" : `${rows.length} events`);
      })
      .catch((e: unknown) => {
        setText(this.status, `Could not load the alarm log: ${errText(e)}`);
      })
      .finally(() => {
        this.loading = false;
      });
  }
}

function errText(e: unknown): string {
  if (e && typeof e === "object" && "message" in e) {
    const o = e as { code?: unknown; message: unknown };
    return o.code ? `${String(o.message)} (${String(o.code)})` : String(o.message);
  }
  return typeof e === "string" ? e : "unknown error";
}

// ------------------------------------------------------------------ overview

class BedTile {
  readonly root: HTMLDivElement;
  private readonly patient: PatientHeader;
  private readonly panel: NumericPanel;
  private readonly chips: DeviceChips;
  private readonly alarmBar: AlarmBar;
  private readonly news2: News2Badge;

  constructor(readonly bed: BedView, actions: Actions) {
    const id = bed.bed;
    this.patient = new PatientHeader(id, actions);
    this.panel = new NumericPanel(id, "tile-nums");
    this.chips = new DeviceChips(id);
    this.alarmBar = new AlarmBar(id, actions, 2, true);
    this.news2 = new News2Badge(id);
    this.root = h(
      "div",
      { class: "tile", testid: `bed-tile-${id}`, attrs: { role: "button", tabindex: "0", "aria-label": `${bed.label}, open` } },
      h(
        "div",
        { class: "tile-head" },
        h("span", { class: "bed-label", text: bed.label }),
        this.patient.nameBox,
        this.patient.category,
        h("span", { class: "spacer" }),
        this.news2.root,
        this.patient.admit,
      ),
      this.alarmBar.root,
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
    const alarms = bedAlarms(state, b.bed);
    const news2 = bedNews2(state, b.bed);
    this.alarmBar.update(alarms, ctx.coreNow, isIncomplete(news2) ? news2.total : null);
    this.news2.update(news2);
    updateBedSignal(this.root, alarms);
  }
}

/** The tile/detail frame in the highest priority's colour, flashing while unanswered. */
function updateBedSignal(root: HTMLElement, alarms: BedAlarmState | undefined): void {
  const sig = bedSignal(alarms);
  setAttr(root, "data-alarm", sig.priority);
  setClass(root, "is-flashing", sig.period !== null);
  setFlash(root, sig.period);
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
      const f = Math.min(tileW / 50, tileH / 25);
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
    // Below this the device chips would crowd out the numerics (style.css).
    this.root.classList.toggle("is-dense", fs < 11);
  }

  update(state: WardState, ctx: FrameContext, bedsChanged: boolean): void {
    if (bedsChanged) this.sync(state.beds);
    for (let i = 0; i < this.tiles.length; i++) this.tiles[i].update(state, ctx, state.beds[i], bedsChanged);
  }
}

// ------------------------------------------------------------------ single bed

interface DeviceRow {
  root: HTMLTableRowElement;
  label: HTMLSpanElement;
  info: HTMLDivElement;
  state: HTMLSpanElement;
  stateCell: HTMLTableCellElement;
  battery: HTMLSpanElement;
  offset: HTMLTableCellElement;
  lastData: HTMLTableCellElement;
  technical: HTMLSpanElement;
  trust: HTMLSpanElement;
  pair: HTMLButtonElement;
  source: HTMLTableCellElement;
}

type DetailTab = "devices" | "log";

class DetailView {
  readonly root: HTMLDivElement;
  private readonly patient: PatientHeader;
  private readonly discharge: HTMLButtonElement;
  private readonly mrn: HTMLSpanElement;
  private readonly dob: HTMLSpanElement;
  private readonly admitted: HTMLSpanElement;
  private readonly info: HTMLDivElement;
  private readonly panel: NumericPanel;
  private readonly alarmBar: AlarmBar;
  private readonly news2: News2Panel;
  private readonly log: AlarmLogView;
  private readonly devicesBox: HTMLDivElement;
  private readonly tabDevices: HTMLButtonElement;
  private readonly tabLog: HTMLButtonElement;
  private tab: DetailTab = "devices";
  private readonly tbody = h("tbody");
  private readonly rows = new Map<string, DeviceRow>();
  private readonly fhirLink: HTMLButtonElement;
  private readonly fhirLinked: HTMLSpanElement;

  constructor(readonly bed: BedView, private readonly actions: Actions) {
    const id = bed.bed;
    this.patient = new PatientHeader(id, actions);
    this.discharge = h("button", { class: "btn btn-discharge", testid: `discharge-${id}`, text: "Discharge", attrs: { type: "button" } });
    this.discharge.addEventListener("click", () => actions.discharge(id));
    const back = h("button", { class: "btn btn-back", testid: "back", text: "\u2190 Back", attrs: { type: "button", title: "Back to all beds (Esc)" } });
    back.addEventListener("click", () => actions.back());
    this.mrn = h("span", { testid: `mrn-${id}` });
    this.dob = h("span", { testid: `dob-${id}` });
    this.admitted = h("span", { testid: `admitted-${id}` });
    this.fhirLinked = h("span", { class: "fhir-linked", testid: `fhir-linked-${id}` });
    this.fhirLinked.hidden = true;
    this.fhirLink = button("btn-small btn-fhir-link", `fhir-link-${id}`, "Link to FHIR\u2026", () => actions.linkFhir(id), "Find this patient on the FHIR server by MRN and link the admission, so its readings upload");
    this.fhirLink.hidden = true;
    this.info = h(
      "div",
      { class: "detail-info" },
      h("span", { class: "k", text: "MRN" }),
      this.mrn,
      h("span", { class: "k", text: "DOB" }),
      this.dob,
      h("span", { class: "k", text: "Admitted" }),
      this.admitted,
      this.fhirLinked,
      this.fhirLink,
    );
    this.panel = new NumericPanel(id, "detail-nums");
    this.alarmBar = new AlarmBar(id, actions, 8, false);
    this.news2 = new News2Panel(id, actions);
    this.log = new AlarmLogView(id, actions);
    const table = h(
      "table",
      { class: "device-table", testid: `devices-${id}` },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...["Device", "ID", "State", "Battery", "Clock offset", "Last data", "Condition", "Source", ""].map((t) => h("th", { text: t })),
        ),
      ),
      this.tbody,
    );
    this.tabDevices = button("tab is-active", `tab-devices-${id}`, "Devices", () => this.showTab("devices"));
    this.tabLog = button("tab", `tab-alarm-log-${id}`, "Alarm log (24 h)", () => this.showTab("log"));
    const addDevice = button("btn-add-device", `add-device-${id}`, "+ Add device\u2026", () => actions.addDevice(id));
    this.devicesBox = h("div", { class: "detail-devices" }, table);
    this.log.root.hidden = true;
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
        button("btn-trends", `trends-open-${id}`, "Trends\u2026", () => actions.openTrends(id), "This bed's vital signs over hours and days"),
        this.patient.admit,
        this.discharge,
      ),
      this.alarmBar.root,
      h("div", { class: "detail-body" }, this.panel.root, this.news2.root),
      h(
        "div",
        { class: "detail-bottom" },
        h("div", { class: "tabs" }, this.tabDevices, this.tabLog, h("span", { class: "spacer" }), addDevice),
        this.devicesBox,
        this.log.root,
      ),
    );
  }

  private showTab(t: DetailTab): void {
    this.tab = t;
    setClass(this.tabDevices, "is-active", t === "devices");
    setClass(this.tabLog, "is-active", t === "log");
    setHidden(this.devicesBox, t !== "devices");
    setHidden(this.log.root, t !== "log");
    if (t === "log") this.log.load();
  }

  private row(d: DeviceView): DeviceRow {
    let r = this.rows.get(d.device);
    if (r) return r;
    const id = `${this.bed.bed}-${d.device}`;
    r = {
      root: h("tr", { testid: `device-row-${id}` }),
      label: h("span"),
      info: h("div", { class: "device-info", testid: `device-info-${id}` }),
      state: h("span", { class: "chip-state", testid: `device-row-state-${id}` }),
      stateCell: h("td", { class: "chip" }),
      battery: h("span", { class: "chip-battery" }),
      offset: h("td"),
      lastData: h("td"),
      technical: h("span", { class: "chip-technical" }),
      trust: h("span", { class: "chip-trust", testid: `device-row-trust-${id}` }),
      pair: button("btn-small", `pair-device-${id}`, "Pair", () => this.actions.pairDevice(this.bed.bed, d.device), "Bond with this device"),
      source: h("td"),
    };
    r.stateCell.append(r.state);
    const bed = this.bed.bed;
    const device = d.device;
    r.root.append(
      h("td", {}, r.label, r.info),
      h("td", { class: "mono", text: d.device }),
      r.stateCell,
      h("td", { class: "chip" }, r.battery),
      r.offset,
      r.lastData,
      h("td", { class: "chip" }, r.technical, r.trust),
      r.source,
      h("td", {}, r.pair, button("btn-small", `remove-device-${id}`, "Remove", () => this.actions.removeDevice(bed, device), "Remove this device from the bed")),
    );
    this.rows.set(d.device, r);
    this.tbody.append(r.root);
    return r;
  }

  update(state: WardState, ctx: FrameContext, b: BedView, bedsChanged: boolean, perfNow: number, fhir: FhirFacts): void {
    const a0 = b.admission;
    const link = a0 ? fhirLinkOf(a0, fhir) : null;
    setHidden(this.fhirLink, !(fhir.configured && a0 && !link));
    setHidden(this.fhirLinked, !(fhir.configured && link));
    setText(this.fhirLinked, link ? "FHIR \u2713 linked" : "");
    setAttr(this.fhirLinked, "title", link ? `Linked to FHIR ${link}` : null);
    setAttr(this.fhirLinked, "data-patient", link);
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
    const alarms = bedAlarms(state, b.bed);
    this.alarmBar.update(alarms, ctx.coreNow);
    updateBedSignal(this.root, alarms);
    this.news2.update(bedNews2(state, b.bed));
    if (this.tab === "log") this.log.maybeLoad(alarms, perfNow);
    const devices = bedDevices(state, b.bed);
    const seen = new Set<string>();
    for (const d of devices) {
      seen.add(d.device);
      const r = this.row(d);
      setText(r.label, d.label);
      setText(r.info, formatDeviceInfo(d.info));
      updateDeviceParts(r.stateCell, r.state, r.battery, r.technical, d, ctx);
      updateTrust(r.trust, d);
      setHidden(r.pair, d.bonded !== false);
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
  private readonly simScenario: HTMLSpanElement;
  private readonly version: HTMLAnchorElement;
  private readonly keySource: HTMLSpanElement;
  private readonly clock: HTMLSpanElement;
  private readonly clockLabel: HTMLSpanElement;
  private readonly sync: HTMLSpanElement;
  private readonly syncStatus: HTMLSpanElement;
  private readonly syncPending: HTMLSpanElement;
  private readonly deadLettersOpen: HTMLAnchorElement;
  private fhir: FhirFacts = { configured: false, linked: new Map() };
  private readonly noData: HTMLDivElement;
  /** The store was damaged at start and moved aside: recording restarted. */
  private readonly storeRecovered: HTMLDivElement;
  private readonly storeRolledBack: HTMLDivElement;
  private readonly noDataDetail: HTMLSpanElement;
  private readonly error: HTMLDivElement;
  private readonly toast: HTMLDivElement;
  private toastTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly main: HTMLElement;
  private readonly signed: HTMLSpanElement;
  private readonly signedName: HTMLSpanElement;
  private readonly signInButton: HTMLButtonElement;
  private readonly breakGlassButton: HTMLButtonElement;
  private readonly pinLink: HTMLAnchorElement;
  private readonly audioBanner: HTMLButtonElement;
  private readonly audioState: HTMLSpanElement;
  private readonly pauseAll: HTMLButtonElement;
  private readonly overview: Overview;
  private readonly syncSlot = h("span", { class: "sync-slot" });
  private detail: DetailView | null = null;
  private renderedBedsVersion = -1;

  constructor(private readonly actions: Actions) {
    this.simText = h("span", { class: "sim-main", text: "SIMULATED DEVICES" });
    // The scenario on a second line inside the same box keeps the header within 1280 px.
    this.simScenario = h("span", { class: "sim-scenario" });
    this.simScenario.hidden = true;
    this.simBanner = h(
      "div",
      { class: "sim-banner", testid: "sim-banner", attrs: { role: "status" } },
      h("span", { class: "sim-text" }, this.simText, this.simScenario),
    );
    this.simBanner.hidden = true;
    // The version opens About (which site configuration is in use, and its hash).
    this.version = h("a", { class: "version", testid: "about-open", attrs: { href: "#", role: "button", title: "About this workstation" } });
    this.version.addEventListener("click", (e) => {
      e.preventDefault();
      actions.openAbout();
    });
    this.keySource = h("span", { class: "key-source", testid: "key-source" });
    this.clock = h("span", { class: "clock", testid: "clock" });
    this.clockLabel = h("span", { class: "clock-label", testid: "clock-label", attrs: { title: "The monitor core's clock, which data times use, differs from this workstation's clock" } });
    this.clockLabel.hidden = true;
    this.syncStatus = h("span", { class: "sync-status", testid: "sync-status", attrs: { role: "status" } });
    this.syncPending = h("span", { class: "sync-pending", testid: "sync-pending" });
    this.deadLettersOpen = h("a", { class: "dead-letters-open", testid: "dead-letters-open", attrs: { href: "#", role: "button", title: "Readings the FHIR server refused" } });
    this.deadLettersOpen.addEventListener("click", (e) => {
      e.preventDefault();
      actions.openDeadLetters();
    });
    // Absent from the page (not just hidden) until a FHIR server is known to be configured.
    this.sync = h("span", { class: "sync" }, h("span", { class: "sync-line" }, this.syncStatus, this.deadLettersOpen), this.syncPending);
    this.noDataDetail = h("span", { class: "nodata-detail" });
    this.noData = h(
      "div",
      { class: "nodata-banner", testid: "nodata-banner", attrs: { role: "alert" } },
      h("span", { class: "nodata-text", text: "NO DATA FROM MONITOR CORE" }),
      this.noDataDetail,
    );
    this.noData.hidden = true;
    this.storeRecovered = h("div", { class: "error-banner", testid: "store-recovered-banner", attrs: { role: "alert" } });
    this.storeRecovered.hidden = true;
    this.storeRolledBack = h("div", { class: "error-banner", testid: "store-rolled-back-banner", attrs: { role: "alert" } });
    this.storeRolledBack.hidden = true;
    this.error = h("div", { class: "error-banner", testid: "error-banner", attrs: { role: "alert" } });
    this.error.hidden = true;
    this.toast = h("div", { class: "error-banner action-error", testid: "action-error", attrs: { role: "alert" } });
    this.toast.hidden = true;

    // Who is acting: the signed-in user and role (the core takes the actor from its session).
    this.signedName = h("span", { class: "signed-name", testid: "user-signed" });
    const signOut = h("a", { class: "signed-change", testid: "sign-out", text: "sign out", attrs: { href: "#", role: "button" } });
    signOut.addEventListener("click", (e) => {
      e.preventDefault();
      actions.signOut();
    });
    this.pinLink = h("a", { class: "signed-change", testid: "set-pin-open", text: "set PIN", attrs: { href: "#", role: "button", title: "A short PIN for the rest of this shift" } });
    this.pinLink.addEventListener("click", (e) => {
      e.preventDefault();
      actions.setPin();
    });
    this.pinLink.hidden = true;
    this.signed = h("span", { class: "signed" }, "Signed in: ", this.signedName, " ", this.pinLink, " ", signOut);
    this.signed.hidden = true;
    this.signInButton = h("button", { class: "btn btn-primary", testid: "sign-in-open", text: "Sign in", attrs: { type: "button", title: "Sign in to act or to see patient details" } });
    this.signInButton.addEventListener("click", () => actions.signIn());
    this.breakGlassButton = h("button", { class: "btn", testid: "break-glass-open", text: "Emergency access\u2026", attrs: { type: "button", title: "Clinical access for 15 minutes, with a reason" } });
    this.breakGlassButton.addEventListener("click", () => actions.breakGlass());
    this.breakGlassButton.hidden = true;

    // Sound needs a user gesture in a webview: say so until the AudioContext runs.
    this.audioBanner = h("button", {
      class: "audio-banner",
      testid: "audio-enable",
      text: "\u26A0 ALARM SOUND OFF \u2014 click here to enable alarm sound",
      attrs: { type: "button" },
    });
    this.audioBanner.addEventListener("click", () => actions.enableAudio());
    this.audioBanner.hidden = true;
    this.audioState = h("span", { class: "audio-state", testid: "audio-state", text: "blocked", attrs: { title: "Alarm sound" } });
    const admissions = h("button", { class: "btn btn-admissions", testid: "admissions-open", text: "Admissions\u2026", attrs: { type: "button", title: "Current and past admissions: trends, flowsheet and report of a stay" } });
    admissions.addEventListener("click", () => actions.openAdmissions());
    this.pauseAll = h("button", { class: "btn btn-pause", testid: "pause-all", text: "Pause all", attrs: { type: "button", title: "Pause alarm audio at every bed with alarms" } });
    this.pauseAll.addEventListener("click", () => actions.pauseAll());
    this.overview = new Overview(actions);
    this.main = h("main", { class: "main" }, this.overview.root);
    this.root = h(
      "div",
      { class: "app" },
      h(
        "header",
        { class: "header" },
        h("span", { class: "brand", text: "Vigil" }),
        h("span", { class: "header-meta" }, this.version, this.keySource),
        this.simBanner,
        h("span", { class: "spacer" }),
        this.syncSlot,
        admissions,
        h("span", { class: "header-user" }, this.signed, this.signInButton, this.breakGlassButton, this.audioState),
        this.pauseAll,
        h("span", { class: "clock-box" }, this.clock, this.clockLabel),
      ),
      this.audioBanner,
      this.noData,
      this.storeRecovered,
      this.storeRolledBack,
      this.error,
      this.toast,
      this.main,
    );
    window.addEventListener("resize", () => this.overview.layout());
  }

  /** FHIR upload indicator; null = no FHIR server configured (nothing shown). */
  setSync(m: SyncModel | null): void {
    if (!m) {
      this.syncSlot.replaceChildren();
      return;
    }
    if (!this.sync.isConnected) this.syncSlot.replaceChildren(this.sync);
    setText(this.syncStatus, m.text);
    setAttr(this.syncStatus, "data-level", m.level);
    setAttr(this.sync, "title", m.title);
    setText(this.syncPending, m.pending);
    setHidden(this.syncPending, !m.pending);
    setText(this.deadLettersOpen, m.deadLetters);
    setHidden(this.deadLettersOpen, m.level === "unknown");
    setClass(this.deadLettersOpen, "has-dead", m.deadCount > 0);
  }

  setFhir(fhir: FhirFacts): void {
    this.fhir = fhir;
  }

  setAppInfo(info: AppInfo | null): void {
    if (!info) setHidden(this.storeRecovered, true);
    if (!info) setHidden(this.storeRolledBack, true);
    if (!info) {
      // Unknown mode must not look like "real": say so, loudly.
      setText(this.simText, "MODE UNKNOWN \u2014 cannot confirm devices are real");
      setHidden(this.simScenario, true);
      setHidden(this.simBanner, false);
      return;
    }
    setText(this.version, `v${info.version}`);
    setText(this.storeRecovered, storeRecoveredText(info));
    setHidden(this.storeRecovered, !info.store_recovered_from);
    setText(this.storeRolledBack, storeRolledBackText(info));
    setHidden(this.storeRolledBack, !info.store_rolled_back);
    setText(this.keySource, `key: ${info.key_source}`);
    setAttr(this.keySource, "title", `key: ${info.key_source}`);
    const sim = info.mode === "simulated";
    setText(this.simText, sim ? "SIMULATED DEVICES" : "");
    setText(this.simScenario, sim && info.scenario ? `scenario: ${info.scenario}` : "");
    setHidden(this.simScenario, !(sim && info.scenario));
    setHidden(this.simBanner, !sim);
  }

  /** A failed operator action, shown for a while. */
  showActionError(text: string): void {
    setText(this.toast, text);
    setHidden(this.toast, false);
    if (this.toastTimer) clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => setHidden(this.toast, true), 10000);
  }

  /** The signed-in user's label, e.g. "ann (nurse)" (null: signed out, the Sign in button shows). */
  setUser(label: string | null, offerBreakGlass = false, underBreakGlass = false, offerPin = false): void {
    setHidden(this.pinLink, !offerPin);
    setText(this.signedName, label ?? "");
    setHidden(this.signed, label === null);
    setHidden(this.signInButton, label !== null);
    setHidden(this.breakGlassButton, !offerBreakGlass);
    setClass(this.signed, "is-break-glass", underBreakGlass);
  }

  /** Audio state for the header: the banner while blocked, and the test element. */
  setAudio(f: AudioFacts): void {
    setHidden(this.audioBanner, f.running);
    setText(this.audioState, f.stateText);
    setAttr(this.audioState, "data-playing", f.playing);
    setClass(this.audioState, "is-blocked", !f.running);
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
    // The core's clock: data times and ages use it, and it runs fast under --speed.
    const clock = clockModel(ctx.coreNow, Date.now());
    setText(this.clock, clock.text);
    setText(this.clockLabel, clock.label);
    setHidden(this.clockLabel, !clock.label);
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
      this.detail.update(state, ctx, b, bedsChanged, perfNow, this.fhir);
    } else {
      this.overview.update(state, ctx, bedsChanged);
    }
  }
}

/** The banner while recording runs in a store started after the old one was found damaged. */
export function storeRolledBackText(info: AppInfo): string {
  if (!info.store_rolled_back) return "";
  return `STORE ROLLED BACK \u2014 the record file is older than its last use (${info.store_rolled_back}); recent records may be missing. Monitoring continues; tell the administrator (vigil store verify)`;
}

export function storeRecoveredText(info: AppInfo): string {
  if (!info.store_recovered_from) return "";
  return `RECORDING RESTARTED \u2014 the store was damaged and moved aside to ${info.store_recovered_from}; earlier data is not shown until it is salvaged (vigil store salvage)`;
}
