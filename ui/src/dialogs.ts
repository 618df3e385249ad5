// Admit and discharge dialogs. Modal overlays created on open and removed on close.

import type { AboutView, AdmissionListItem, AdmissionView, AdmitRequest, AppInfo, BedView, DeadLetter, DeviceInfoView, DeviceKind, DeviceView, News2Entry, ParameterLimit, PatientMatch, ScanResult, FlowsheetRequest, FlowsheetView, TrendRequest, TrendView } from "./contract";
import { stayEnd } from "./flowsheet";
import { deadLetterRows, fhirErrorText, matchConflict, matchText, requeueText } from "./sync";
import { h, setHidden, setText } from "./dom";
import { TrendPanel, type TrendDeps } from "./trends";
import { buildRows, checkText, installConfirmText } from "./about";
import { aboutRows, bondedText, formatDateTime, identityText, kindText, rssiBars, rssiText } from "./format";
import {
  type AdmitField,
  type News2Field,
  commandErrorText,
  localIsoDate,
  toCommandError,
  validateAdmit,
  validateNews2,
} from "./validate";

export interface DialogDeps {
  admit(request: AdmitRequest): Promise<AdmissionView>;
  discharge(bed: string): Promise<void>;
  onAdmitted(bed: string, admission: AdmissionView): void;
  onDischarged(bed: string): void;
  /** The signed-in initials, or null (the caller then asks for them). */
  user(): string | null;
  news2Enter(bed: string, entry: News2Entry): Promise<void>;
  devicesScan(seconds: number): Promise<ScanResult[]>;
  /** A bed's trends (clinicians). */
  trend(request: TrendRequest): Promise<TrendView>;
  /** Writes a PDF report of the bed over [from, to] (ms), or of that range inside a stay, and returns its path (clinicians). */
  reportPdf?(bed: string, from: number, to: number, admission?: string): Promise<string>;
  /** The flowsheet of a range (clinicians). */
  flowsheet?(request: FlowsheetRequest): Promise<FlowsheetView>;
  /** Every admission, newest first (clinicians). */
  admissions?(): Promise<AdmissionListItem[]>;
  /** The core's clock, ms (the end of "the last N hours"). */
  coreNow(): number;
  /** The chosen device's Device Information (connects briefly). */
  deviceIdentify(address: string): Promise<DeviceInfoView>;
  deviceAssign(address: string, bed: string, kind: string): Promise<void>;
  deviceRemove(address: string): Promise<void>;
  /** Bed label for "assigned to Bed 2". */
  bedLabel(bed: string): string;
  /** A FHIR server is configured (sync_status was non-null). */
  fhirConfigured(): boolean;
  fhirFindPatient(mrn: string): Promise<PatientMatch[]>;
  fhirLinkPatient(bed: string, patient: string): Promise<void>;
  /** The admission at `bed` is now linked to `patient`. */
  onLinked(bed: string, admission: string, patient: string): void;
  /** An error to show after a dialog closed (e.g. admitted, but the link failed). */
  showError(text: string): void;
  deadLetters(): Promise<DeadLetter[]>;
  /** Dead letters back in the upload queue (all when null); how many. No roles yet: anyone may. */
  fhirRequeue(ids: number[] | null): Promise<number>;
  /** The bed's current limits (from its alarm state). */
  limitsOf(bed: string): ParameterLimit[];
  setLimit(bed: string, parameter: string, low: number | null, high: number | null): Promise<void>;
  /** The About panel's build and update facts (null: the core did not answer). */
  about?(): Promise<AboutView>;
  /** Asks the site's update server (signed-in users; audited by the core). */
  updateCheck?(): Promise<import("./contract").UpdateCheck>;
  /** Installs and restarts (admin; `confirmBeds`: the monitored beds the user confirmed). */
  updateInstall?(confirmBeds: number | null): Promise<string>;
}

/**
 * "Find on FHIR server": search by MRN, list the matches for the nurse to confirm.
 * `onChoose` gets the chosen match (null when the choice is cleared).
 */
class FhirSearch {
  readonly button: HTMLButtonElement;
  readonly root: HTMLDivElement;
  private readonly status: HTMLDivElement;
  private readonly list: HTMLDivElement;
  private readonly error: HTMLDivElement;
  chosen: PatientMatch | null = null;
  /** The MRN the shown matches were found by. */
  searchedMrn: string | null = null;
  private seq = 0;

  constructor(
    private readonly find: (mrn: string) => Promise<PatientMatch[]>,
    private readonly mrn: () => string,
    private readonly onChoose: (m: PatientMatch | null) => void,
  ) {
    this.button = h("button", { class: "btn btn-fhir-find", testid: "fhir-find", text: "Find on FHIR server", attrs: { type: "button" } });
    this.status = h("div", { class: "field-note fhir-status", testid: "fhir-status", attrs: { role: "status" } });
    this.list = h("div", { class: "scan-list fhir-matches", testid: "fhir-matches", attrs: { role: "radiogroup", "aria-label": "Patients found on the FHIR server" } });
    this.error = h("div", { class: "command-error", testid: "fhir-error", attrs: { role: "alert" } });
    this.error.hidden = true;
    this.root = h("div", { class: "fhir-search" }, this.status, this.list, this.error);
    this.button.addEventListener("click", () => void this.search());
  }

  /** Forget the matches (the MRN changed: they no longer belong to it). */
  clear(): void {
    this.seq++;
    this.searchedMrn = null;
    this.list.replaceChildren();
    setText(this.status, "");
    setHidden(this.error, true);
    this.button.disabled = false;
    if (this.chosen) {
      this.chosen = null;
      this.onChoose(null);
    }
  }

  private async search(): Promise<void> {
    const mrn = this.mrn().trim();
    this.clear();
    if (!mrn) {
      setText(this.error, "Enter the MRN first, then search.");
      setHidden(this.error, false);
      return;
    }
    const seq = this.seq;
    this.button.disabled = true;
    setText(this.status, `Searching for MRN ${mrn}\u2026`);
    try {
      const found = await this.find(mrn);
      if (seq !== this.seq) return;
      this.searchedMrn = mrn;
      setText(
        this.status,
        found.length === 0
          ? `No patient with MRN ${mrn} on the FHIR server.`
          : `${found.length} found for MRN ${mrn}: choose the patient to confirm.`,
      );
      found.forEach((m, i) => {
        const radio = h("input", { attrs: { type: "radio", name: "fhir-choice", value: m.reference, "aria-label": matchText(m) } });
        const row = h(
          "label",
          { class: "scan-result fhir-match", testid: `fhir-match-${i}` },
          radio,
          h("span", { class: "scan-name", text: m.name || "(no name)" }),
          h("span", { class: "fhir-match-detail", text: matchText(m).split(" \u00b7 ").slice(1).join(" \u00b7 ") }),
          h("span", { class: "scan-addr mono", text: m.reference }),
        );
        radio.addEventListener("change", () => {
          this.chosen = m;
          for (const el of this.list.querySelectorAll(".fhir-match")) el.classList.toggle("is-chosen", el === row);
          this.onChoose(m);
        });
        this.list.append(row);
      });
    } catch (e) {
      if (seq !== this.seq) return;
      setText(this.status, "");
      setText(this.error, `Could not search: ${fhirErrorText(toCommandError(e))}`);
      setHidden(this.error, false);
    } finally {
      if (seq === this.seq) this.button.disabled = false;
    }
  }
}

/** Scan errors in words; "no_adapter" is the simulated workstation. */
export function scanErrorText(e: unknown): string {
  const err = toCommandError(e);
  if (err.code === "no_adapter") return "No Bluetooth adapter: this workstation runs simulated devices";
  if (/not found|unknown command|not allowed/i.test(err.message))
    return `Device scanning is not available in this version of Vigil (${err.message})`;
  return `Could not scan: ${commandErrorText(err)}`;
}

// What a scanned device can be assigned as when it advertises no health
// service: the kinds with a Bluetooth LE profile (the core refuses others).
const KIND_OPTIONS: DeviceKind[] = ["heart_rate_strap", "pulse_oximeter", "blood_pressure_cuff", "thermometer", "weight_scale", "glucose_meter"];

interface Modal {
  overlay: HTMLDivElement;
  busy: boolean;
}

export class Dialogs {
  private current: Modal | null = null;
  private restoreFocus: Element | null = null;

  constructor(private readonly deps: DialogDeps) {}

  get isOpen(): boolean {
    return this.current !== null;
  }

  /** Close unless a command is in flight. */
  close(): void {
    if (!this.current || this.current.busy) return;
    this.current.overlay.remove();
    this.current = null;
    if (this.restoreFocus instanceof HTMLElement && this.restoreFocus.isConnected) this.restoreFocus.focus();
  }

  private open(panel: HTMLElement, testid: string, title: string): Modal {
    this.close();
    this.restoreFocus = document.activeElement;
    const overlay = h(
      "div",
      { class: "modal-overlay" },
      h("div", { class: "modal", testid, attrs: { role: "dialog", "aria-modal": "true", "aria-label": title } }, panel),
    );
    const modal: Modal = { overlay, busy: false };
    overlay.addEventListener("click", (e) => {
      if (e.target === overlay) this.close();
    });
    document.body.append(overlay);
    this.current = modal;
    return modal;
  }

  openAdmit(bed: BedView): void {
    const field = (id: string, label: string, input: HTMLInputElement | HTMLSelectElement) => {
      input.id = id;
      input.setAttribute("data-testid", id);
      input.required = true;
      const err = h("span", { class: "field-error", testid: `${id}-error` });
      err.hidden = true;
      input.setAttribute("aria-describedby", `${id}-error-text`);
      err.id = `${id}-error-text`;
      return { row: h("div", { class: "field" }, h("label", { text: label, attrs: { for: id } }), input, err), input, err };
    };
    const text = (extra: Record<string, string> = {}) =>
      h("input", { attrs: { type: "text", autocomplete: "off", spellcheck: "false", ...extra } });

    const name = field("admit-name", "Display name", text({ maxlength: "100" }));
    const mrn = field("admit-mrn", "MRN", text({ maxlength: "40" }));
    const dob = field("admit-dob", "Date of birth (YYYY-MM-DD)", text({ placeholder: "YYYY-MM-DD", maxlength: "10", inputmode: "numeric" }));
    const select = h("select");
    select.append(
      h("option", { text: "\u2014 choose \u2014", attrs: { value: "" } }),
      h("option", { text: "Adult", attrs: { value: "adult" } }),
      h("option", { text: "Paediatric", attrs: { value: "paediatric" } }),
      h("option", { text: "Neonatal", attrs: { value: "neonatal" } }),
    );
    const category = field("admit-category", "Category", select);

    // FHIR: find the patient by MRN and, once admitted, link the admission to them.
    let fhir: FhirSearch | null = null;
    const chosenNote = h("div", { class: "field-note fhir-chosen", testid: "fhir-chosen" });
    chosenNote.hidden = true;
    if (this.deps.fhirConfigured()) {
      fhir = new FhirSearch(
        (m) => this.deps.fhirFindPatient(m),
        () => mrn.input.value,
        (m) => {
          if (m) {
            if (!name.input.value.trim() && m.name) name.input.value = m.name;
            if (!dob.input.value.trim() && m.birth_date) dob.input.value = m.birth_date;
          }
          showChosen();
        },
      );
      const f = fhir;
      const showChosen = () => {
        const m = f.chosen;
        const conflict = m ? matchConflict(m, { mrn: mrn.input.value, date_of_birth: dob.input.value }) : null;
        setText(chosenNote, m ? (conflict ? `\u26A0 ${conflict}` : `Will link to ${m.reference} after admission.`) : "");
        setHidden(chosenNote, !m);
        chosenNote.classList.toggle("is-conflict", !!conflict);
      };
      dob.input.addEventListener("input", showChosen);
      mrn.input.addEventListener("input", () => {
        if (f.searchedMrn !== null && mrn.input.value.trim() !== f.searchedMrn) f.clear();
      });
      mrn.row.classList.add("field-with-action");
      mrn.row.insertBefore(h("div", { class: "field-inline" }, mrn.input, fhir.button), mrn.err);
      mrn.row.append(fhir.root, chosenNote);
    }
    const fields: Record<AdmitField, { input: HTMLInputElement | HTMLSelectElement; err: HTMLSpanElement }> = {
      display_name: name,
      mrn,
      date_of_birth: dob,
      category,
    };

    const error = h("div", { class: "command-error", testid: "admit-error", attrs: { role: "alert" } });
    error.hidden = true;
    const submit = h("button", { class: "btn btn-primary", testid: "admit-submit", text: "Admit", attrs: { type: "submit" } });
    const cancel = h("button", { class: "btn", testid: "admit-cancel", text: "Cancel", attrs: { type: "button" } });
    const form = h(
      "form",
      { class: "admit-form", attrs: { novalidate: "" } },
      h("h2", { text: `Admit to ${bed.label}` }),
      name.row,
      mrn.row,
      dob.row,
      category.row,
      error,
      h("div", { class: "modal-actions" }, cancel, submit),
    );
    const modal = this.open(form, "admit-dialog", `Admit to ${bed.label}`);
    cancel.addEventListener("click", () => this.close());

    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (modal.busy) return;
      setHidden(error, true);
      const v = validateAdmit(
        bed.bed,
        { display_name: name.input.value, mrn: mrn.input.value, date_of_birth: dob.input.value, category: select.value },
        localIsoDate(new Date()),
      );
      let firstBad: HTMLElement | null = null;
      for (const [k, f] of Object.entries(fields) as [AdmitField, (typeof fields)[AdmitField]][]) {
        const msg = v.ok ? undefined : v.errors[k];
        setText(f.err, msg ?? "");
        setHidden(f.err, !msg);
        f.input.setAttribute("aria-invalid", msg ? "true" : "false");
        if (msg && !firstBad) firstBad = f.input;
      }
      if (!v.ok) {
        firstBad?.focus();
        return;
      }
      const match = fhir?.chosen ?? null;
      const conflict = match ? matchConflict(match, v.request) : null;
      if (conflict) {
        setText(error, `${conflict} Correct it, or search again and choose the right patient.`);
        setHidden(error, false);
        return;
      }
      modal.busy = true;
      submit.disabled = true;
      cancel.disabled = true;
      setText(submit, "Admitting\u2026");
      this.deps
        .admit(v.request)
        .then((admission) => {
          modal.busy = false;
          this.deps.onAdmitted(bed.bed, admission);
          this.close();
          if (match) this.linkAfterAdmit(bed, admission, match);
        })
        .catch((err: unknown) => {
          modal.busy = false;
          submit.disabled = false;
          cancel.disabled = false;
          setText(submit, "Admit");
          setText(error, `Could not admit: ${commandErrorText(toCommandError(err))}`);
          setHidden(error, false);
        });
    });
    name.input.focus();
  }

  /** The admission succeeded; link it (errors are shown, the admission stands). */
  private linkAfterAdmit(bed: BedView, admission: AdmissionView, match: PatientMatch): void {
    this.deps
      .fhirLinkPatient(bed.bed, match.reference)
      .then(() => this.deps.onLinked(bed.bed, admission.id, match.reference))
      .catch((e: unknown) =>
        this.deps.showError(
          `Admitted to ${bed.label}, but could not link to FHIR patient ${match.reference}: ${fhirErrorText(toCommandError(e))}. Use \u201cLink to FHIR patient\u201d in the bed view.`,
        ),
      );
  }

  /** An admitted bed without a FHIR link: search by its MRN, confirm, link. */
  openFhirLink(bed: BedView): void {
    const a = bed.admission;
    if (!a) return;
    const mrnInput = h("input", { attrs: { id: "fhir-link-mrn", "data-testid": "fhir-link-mrn", type: "text", autocomplete: "off", spellcheck: "false", maxlength: "40" } });
    mrnInput.value = a.mrn;
    const error = h("div", { class: "command-error", testid: "fhir-link-error", attrs: { role: "alert" } });
    error.hidden = true;
    const confirm = h("button", { class: "btn btn-primary", testid: "fhir-link-confirm", text: "Link", attrs: { type: "button" } });
    confirm.disabled = true;
    const cancel = h("button", { class: "btn", testid: "fhir-link-cancel", text: "Cancel", attrs: { type: "button" } });
    const chosenNote = h("div", { class: "field-note fhir-chosen", testid: "fhir-chosen" });
    chosenNote.hidden = true;
    const search = new FhirSearch(
      (m) => this.deps.fhirFindPatient(m),
      () => mrnInput.value,
      (m) => {
        setHidden(error, true);
        const conflict = m ? matchConflict(m, { mrn: a.mrn, date_of_birth: a.date_of_birth }) : null;
        setText(chosenNote, m ? (conflict ? `\u26A0 ${conflict}` : `${a.display_name} will be linked to ${m.reference}.`) : "");
        setHidden(chosenNote, !m);
        chosenNote.classList.toggle("is-conflict", !!conflict);
        // A different MRN or date of birth is a different patient: never link it.
        confirm.disabled = !m || !!conflict;
      },
    );
    mrnInput.addEventListener("input", () => {
      if (search.searchedMrn !== null && mrnInput.value.trim() !== search.searchedMrn) search.clear();
    });
    const panel = h(
      "div",
      { class: "fhir-link" },
      h("h2", { text: `Link ${bed.label} to a FHIR patient` }),
      h(
        "p",
        { class: "field-note" },
        "Admitted: ",
        h("strong", { text: a.display_name }),
        ` \u00b7 born ${a.date_of_birth} \u00b7 MRN ${a.mrn}. Its readings upload once linked, including those taken so far.`,
      ),
      h(
        "div",
        { class: "field field-with-action" },
        h("label", { text: "MRN", attrs: { for: "fhir-link-mrn" } }),
        h("div", { class: "field-inline" }, mrnInput, search.button),
        search.root,
        chosenNote,
      ),
      error,
      h("div", { class: "modal-actions" }, cancel, confirm),
    );
    const modal = this.open(panel, "fhir-link-dialog", `Link ${bed.label} to a FHIR patient`);
    cancel.addEventListener("click", () => this.close());
    confirm.addEventListener("click", () => {
      const m = search.chosen;
      if (modal.busy || !m) return;
      modal.busy = true;
      confirm.disabled = true;
      cancel.disabled = true;
      setHidden(error, true);
      this.deps
        .fhirLinkPatient(bed.bed, m.reference)
        .then(() => {
          modal.busy = false;
          this.deps.onLinked(bed.bed, a.id, m.reference);
          this.close();
        })
        .catch((e: unknown) => {
          modal.busy = false;
          confirm.disabled = false;
          cancel.disabled = false;
          setText(error, `Could not link: ${fhirErrorText(toCommandError(e))}`);
          setHidden(error, false);
        });
    });
    search.button.focus();
  }

  /** Readings the FHIR server refused, newest first, with its reasons. */
  /** About this workstation: what an installer or IT asks first. */
  private trendDeps(): TrendDeps {
    return {
      trend: (r) => this.deps.trend(r),
      limitsOf: (b) => this.deps.limitsOf(b),
      now: () => this.deps.coreNow(),
      ...(this.deps.flowsheet ? { flowsheet: this.deps.flowsheet } : {}),
    };
  }

  /** Report… and Close under a trend panel; the report covers the range on screen. */
  private trendActions(panel: TrendPanel, bed: string, admission: string | undefined, extra: HTMLElement[] = []): void {
    const close = h("button", { class: "btn", testid: "trends-close", text: "Close", attrs: { type: "button" } });
    close.addEventListener("click", () => this.close());
    const actions = h("div", { class: "modal-actions" }, ...extra);
    const reportPdf = this.deps.reportPdf;
    if (reportPdf) {
      // The range on screen, printed: the path is shown, the file holds the patient's identity.
      const note = h("div", { class: "field-note", testid: "trends-report-status", attrs: { role: "status" } });
      const report = h("button", { class: "btn", testid: "trends-report", text: "Report\u2026", attrs: { type: "button" } });
      report.addEventListener("click", () => {
        const { from, to } = panel.range();
        setText(note, "Writing the report\u2026");
        reportPdf(bed, from, to, admission).then(
          (path) => setText(note, `Report saved: ${path}`),
          (e) => setText(note, `Could not write the report: ${commandErrorText(toCommandError(e))}`),
        );
      });
      actions.append(note, report);
    }
    actions.append(close);
    panel.root.append(actions);
  }

  /** Trends of a bed: 1 h … 7 days, several parameters on one time axis (trends.ts). */
  openTrends(bed: BedView): void {
    const who = bed.admission?.display_name ? ` \u2014 ${bed.admission.display_name}` : "";
    const panel = new TrendPanel(this.trendDeps(), bed.bed, `Trends: ${bed.label}${who}`);
    this.trendActions(panel, bed.bed, undefined);
    this.open(panel.root, "trends-dialog", `Trends: ${bed.label}`);
    const now = this.deps.coreNow();
    void panel.load(now - 3_600_000, now);
  }

  /** Every admission, current and past, newest first: open one to review its stay. */
  openAdmissions(): void {
    const load = this.deps.admissions;
    if (!load) return;
    const status = h("div", { class: "field-note", testid: "admissions-status", attrs: { role: "status" }, text: "Loading admissions\u2026" });
    const body = h("tbody");
    const table = h(
      "table",
      { class: "device-table admissions-table", testid: "admissions-table" },
      h("thead", {}, h("tr", {}, ...["Bed", "Patient", "Admitted", "Discharged", ""].map((t) => h("th", { text: t })))),
      body,
    );
    const close = h("button", { class: "btn", testid: "admissions-close", text: "Close", attrs: { type: "button" } });
    close.addEventListener("click", () => this.close());
    const panel = h(
      "div",
      { class: "admissions" },
      h("h2", { text: "Admissions" }),
      h("p", { class: "field-note", text: "Current and past stays, newest first. Open one to see its trends, flowsheet and report." }),
      status,
      h("div", { class: "admissions-scroll" }, table),
      h("div", { class: "modal-actions" }, close),
    );
    this.open(panel, "admissions-dialog", "Admissions");
    load().then(
      (list) => {
        setText(status, list.length === 0 ? "No admissions in this store yet." : `${list.length} admission(s).`);
        body.replaceChildren(
          ...list.map((a) => {
            const open = h("button", { class: "btn btn-small", testid: `admission-open-${a.id}`, text: "Open\u2026", attrs: { type: "button" } });
            open.addEventListener("click", () => this.openStay(a));
            return h(
              "tr",
              { testid: "admission-row", attrs: { "data-admission": a.id, "data-bed": a.bed, "data-current": String(a.discharged_at === null) } },
              h("td", { text: this.deps.bedLabel(a.bed) }),
              // Only a role that may see names gets one (and the core recorded the showing).
              h("td", { class: "admission-name", text: a.display_name ?? "\u2014" }),
              h("td", { text: formatDateTime(Date.parse(a.admitted_at)) }),
              h("td", { text: a.discharged_at ? formatDateTime(Date.parse(a.discharged_at)) : "current" }),
              h("td", {}, open),
            );
          }),
        );
      },
      (e) => setText(status, `Could not list the admissions: ${commandErrorText(toCommandError(e))}`),
    );
  }

  /** One stay's trends, flowsheet and report, by admission id (past or current). */
  openStay(a: AdmissionListItem): void {
    const who = a.display_name ? ` \u2014 ${a.display_name}` : "";
    const stay = { admission: a.id, start: Date.parse(a.admitted_at), end: a.discharged_at ? Date.parse(a.discharged_at) : null };
    const panel = new TrendPanel(this.trendDeps(), a.bed, `${this.deps.bedLabel(a.bed)}${who}`, stay);
    const back = h("button", { class: "btn", testid: "stay-back", text: "\u25c0 Admissions", attrs: { type: "button" } });
    back.addEventListener("click", () => this.openAdmissions());
    this.trendActions(panel, a.bed, a.id, [back]);
    this.open(panel.root, "trends-dialog", `Stay at ${this.deps.bedLabel(a.bed)}`);
    // The last day of the stay first: where a review usually starts.
    const end = stayEnd(a, this.deps.coreNow());
    void panel.load(Math.max(stay.start, end - 24 * 3_600_000), end);
  }

  openAbout(info: AppInfo | null, about: AboutView | null = null): void {
    const rows: [string, string, string?][] = aboutRows(info);
    if (about) rows.splice(1, 0, ...buildRows(about));
    const table = h(
      "table",
      { class: "device-table about-table", testid: "about" },
      h("tbody", {}, ...rows.map(([k, v, title]) => h("tr", {}, h("th", { text: k }), h("td", { text: v, attrs: title ? { title } : {} })))),
    );
    const close = h("button", { class: "btn", testid: "about-close", text: "Close", attrs: { type: "button" } });
    // Updates: anyone signed in may check; only an admin sees Install (the core decides either way).
    const status = h("div", { class: "field-note", testid: "update-status", attrs: { role: "status" } });
    const check = h("button", { class: "btn", testid: "update-check", text: "Check for updates", attrs: { type: "button" } });
    const install = h("button", { class: "btn btn-primary", testid: "update-install", text: "Install\u2026", attrs: { type: "button" } });
    install.hidden = true;
    const confirm = h("div", { class: "update-confirm field-note", testid: "update-confirm-text", attrs: { role: "alert" } });
    const confirmButton = h("button", { class: "btn btn-primary", testid: "update-confirm", text: "Install and restart", attrs: { type: "button" } });
    const confirmBox = h("div", { class: "update-confirm-box" }, confirm, confirmButton);
    confirmBox.hidden = true;
    check.hidden = !about?.update.endpoint || !this.deps.updateCheck;
    let offered: string | null = null;
    const fail = (e: unknown) => {
      setText(status, commandErrorText(toCommandError(e)));
      status.classList.add("command-error");
    };
    check.addEventListener("click", () => {
      check.disabled = true;
      status.classList.remove("command-error");
      setText(status, "Asking the update server\u2026");
      this.deps
        .updateCheck!()
        .then((c) => {
          setText(status, checkText(c));
          offered = c.available;
          setHidden(install, !(c.available && about?.update.may_install));
        })
        .catch(fail)
        .finally(() => (check.disabled = false));
    });
    const runInstall = (beds: number | null) => {
      install.disabled = confirmButton.disabled = true;
      setText(status, "Downloading, checking the signature and installing\u2026");
      this.deps
        .updateInstall!(beds)
        .then((msg) => setText(status, msg))
        .catch((e) => {
          // The ward changed since the confirmation was shown: ask again with today's count.
          if (toCommandError(e).code === "update_needs_confirmation" && this.deps.about) {
            void this.deps.about().then((a) => askConfirm(a.update.monitored_beds));
          }
          fail(e);
        })
        .finally(() => (install.disabled = confirmButton.disabled = false));
    };
    const askConfirm = (beds: number) => {
      const text = installConfirmText(beds, offered ?? "");
      if (text === null) return runInstall(null);
      setText(confirm, text);
      confirmButton.dataset.beds = String(beds);
      setHidden(confirmBox, false);
      confirmButton.focus();
    };
    install.addEventListener("click", () => {
      if (!this.deps.about) return runInstall(null);
      void this.deps.about().then((a) => askConfirm(a.update.monitored_beds), fail);
    });
    confirmButton.addEventListener("click", () => runInstall(Number(confirmButton.dataset.beds)));
    const panel = h(
      "div",
      { class: "about" },
      h("h2", { text: "About Vigil" }),
      table,
      status,
      confirmBox,
      h("div", { class: "modal-actions" }, check, install, close),
    );
    this.open(panel, "about-dialog", "About Vigil");
    close.addEventListener("click", () => this.close());
    close.focus();
  }

  openDeadLetters(): void {
    const status = h("div", { class: "field-note", testid: "dead-letters-status", attrs: { role: "status" }, text: "Loading\u2026" });
    const tbody = h("tbody");
    const table = h(
      "table",
      { class: "device-table dead-letters-table", testid: "dead-letters" },
      h("thead", {}, h("tr", {}, ...["Set aside at", "Bed", "Measurement", "Value", "Kind", "Reason"].map((t) => h("th", { text: t })))),
      tbody,
    );
    table.hidden = true;
    const close = h("button", { class: "btn", testid: "dead-letters-close", text: "Close", attrs: { type: "button" } });
    // Once the cause is fixed on the server (a profile, a rule, a bug), the readings can go.
    const requeue = h("button", {
      class: "btn",
      testid: "dead-letters-requeue",
      text: "Send all again",
      attrs: { type: "button", title: "Put every refused and parked reading back in the upload queue" },
    });
    requeue.hidden = true;
    const done = h("div", { class: "field-note", testid: "dead-letters-requeued", attrs: { role: "status" } });
    done.hidden = true;
    const panel = h(
      "div",
      { class: "dead-letters" },
      h("h2", { text: "Readings the FHIR server refused" }),
      h("p", {
        class: "field-note",
        text: "These readings are kept in Vigil but were not uploaded: refused by the server (the reason is its own), or parked after failing again and again.",
      }),
      status,
      done,
      h("div", { class: "dead-letters-scroll" }, table),
      h("div", { class: "modal-actions" }, requeue, close),
    );
    this.open(panel, "dead-letters-dialog", "Readings the FHIR server refused");
    close.addEventListener("click", () => this.close());
    requeue.addEventListener("click", () => {
      requeue.disabled = true;
      this.deps
        .fhirRequeue(null)
        .then((n) => {
          setText(done, requeueText(n));
          done.classList.remove("command-error");
          setHidden(done, false);
          tbody.replaceChildren();
          table.hidden = true;
          requeue.hidden = true;
          setText(status, "None left: the readings are queued for upload again.");
        })
        .catch((e: unknown) => {
          requeue.disabled = false;
          done.classList.add("command-error");
          setText(done, `Could not send again: ${fhirErrorText(toCommandError(e))}`);
          setHidden(done, false);
        });
    });
    close.focus();
    const MAX_ROWS = 500;
    this.deps
      .deadLetters()
      .then((letters) => {
        requeue.hidden = letters.length === 0;
        const rows = deadLetterRows(letters, (b) => this.deps.bedLabel(b));
        setText(
          status,
          rows.length === 0
            ? "None: the server has accepted every reading it was sent."
            : rows.length > MAX_ROWS
              ? `${rows.length} not uploaded; the newest ${MAX_ROWS} are shown.`
              : `${rows.length} not uploaded, newest first.`,
        );
        for (const r of rows.slice(0, MAX_ROWS)) {
          tbody.append(
            h(
              "tr",
              { testid: `dead-letter-${r.id}` },
              h("td", { class: "mono", text: r.when }),
              h("td", { text: r.bed }),
              h("td", { text: r.measurement }),
              h("td", { class: "mono", text: r.value }),
              h("td", { text: r.kind }),
              h("td", { class: "dead-reason", text: r.reason }),
            ),
          );
        }
        table.hidden = rows.length === 0;
      })
      .catch((e: unknown) => {
        status.classList.add("command-error");
        setText(status, `Could not load: ${fhirErrorText(toCommandError(e))}`);
      });
  }

  openDischarge(bed: BedView): void {
    const a = bed.admission;
    if (!a) return;
    const error = h("div", { class: "command-error", testid: "discharge-error", attrs: { role: "alert" } });
    error.hidden = true;
    const confirm = h("button", { class: "btn btn-danger", testid: "discharge-confirm", text: "Discharge", attrs: { type: "button" } });
    const cancel = h("button", { class: "btn", testid: "discharge-cancel", text: "Cancel", attrs: { type: "button" } });
    const panel = h(
      "div",
      { class: "discharge-confirm" },
      h("h2", { text: `Discharge from ${bed.label}?` }),
      h(
        "p",
        {},
        "Discharge ",
        h("strong", { text: a.display_name }),
        ` (MRN ${a.mrn}) from ${bed.label}. The bed becomes empty.`,
      ),
      error,
      h("div", { class: "modal-actions" }, cancel, confirm),
    );
    const modal = this.open(panel, "discharge-dialog", `Discharge from ${bed.label}`);
    cancel.addEventListener("click", () => this.close());
    confirm.addEventListener("click", () => {
      if (modal.busy) return;
      modal.busy = true;
      confirm.disabled = true;
      cancel.disabled = true;
      setHidden(error, true);
      this.deps
        .discharge(bed.bed)
        .then(() => {
          modal.busy = false;
          this.deps.onDischarged(bed.bed);
          this.close();
        })
        .catch((err: unknown) => {
          modal.busy = false;
          confirm.disabled = false;
          cancel.disabled = false;
          setText(error, `Could not discharge: ${commandErrorText(toCommandError(err))}`);
          setHidden(error, false);
        });
    });
    cancel.focus();
  }

  // ---------------------------------------------------------------- NEWS2 entry

  /** Nurse-entered NEWS2 observations: ACVPU, air/oxygen, SpO2 scale, RR, temperature, systolic. */
  /** Patient-specific alarm limits: changes revert at discharge. */
  openLimits(bed: BedView): void {
    const user = this.deps.user();
    if (!user) return;
    const limits = this.deps.limitsOf(bed.bed);
    const num = (id: string, v: number | null) =>
      h("input", { attrs: { id, "data-testid": id, type: "text", inputmode: "decimal", autocomplete: "off", value: v === null ? "" : String(v), placeholder: "off" } });
    const rows = limits.map((l) => ({
      l,
      low: num(`limit-${l.parameter}-low`, l.limit.low),
      high: num(`limit-${l.parameter}-high`, l.limit.high),
    }));
    const error = h("div", { class: "command-error", testid: "limits-error", attrs: { role: "alert" } });
    error.hidden = true;
    const submit = h("button", { class: "btn btn-primary", testid: "limits-submit", text: "Save", attrs: { type: "submit" } });
    const cancel = h("button", { class: "btn", testid: "limits-cancel", text: "Cancel", attrs: { type: "button" } });
    const form = h(
      "form",
      { class: "news2-form", attrs: { novalidate: "" } },
      h("h2", { text: `Alarm limits \u2014 ${bed.label}` }),
      h("p", { class: "field-note", text: `Changed as ${user}. Patient-specific limits return to the ${bed.admission ? bed.admission.category : "adult"} defaults at discharge. Empty = that limit off.` }),
      h(
        "div",
        { class: "field-grid" },
        ...rows.map((r) =>
          h(
            "div",
            { class: "field" },
            h("label", { text: `${r.l.label} (${r.l.unit})${r.l.patient_specific ? " \u2014 patient-specific" : ""}` }),
            h("span", {}, "low ", r.low, " high ", r.high),
          ),
        ),
      ),
      error,
      h("div", { class: "modal-actions" }, cancel, submit),
    );
    const modal = this.open(form, "limits-dialog", `Alarm limits, ${bed.label}`);
    cancel.addEventListener("click", () => this.close());
    const parse = (s: string): number | null | "bad" => {
      const t = s.trim();
      if (t === "") return null;
      const v = Number(t);
      return Number.isFinite(v) ? v : "bad";
    };
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (modal.busy) return;
      setHidden(error, true);
      const changes: { parameter: string; low: number | null; high: number | null }[] = [];
      for (const r of rows) {
        const low = parse(r.low.value);
        const high = parse(r.high.value);
        if (low === "bad" || high === "bad") {
          setText(error, `${r.l.label}: limits must be numbers`);
          setHidden(error, false);
          return;
        }
        if (low !== r.l.limit.low || high !== r.l.limit.high) changes.push({ parameter: r.l.parameter, low, high });
      }
      modal.busy = true;
      submit.disabled = true;
      try {
        for (const c of changes) await this.deps.setLimit(bed.bed, c.parameter, c.low, c.high);
        modal.busy = false;
        this.close();
      } catch (err) {
        modal.busy = false;
        submit.disabled = false;
        setText(error, commandErrorText(toCommandError(err)));
        setHidden(error, false);
      }
    });
  }

  openNews2(bed: BedView): void {
    const user = this.deps.user();
    if (!user) return;
    const sel = (id: string, options: [string, string][]) => {
      const el = h("select", { attrs: { id, "data-testid": id } });
      for (const [v, t] of options) el.append(h("option", { text: t, attrs: { value: v } }));
      return el;
    };
    const num = (id: string, placeholder: string) =>
      h("input", { attrs: { id, "data-testid": id, type: "text", inputmode: "decimal", autocomplete: "off", placeholder } });
    const inputs: Record<News2Field, HTMLInputElement | HTMLSelectElement> = {
      consciousness: sel("news2-consciousness", [
        ["", "\u2014 not entered \u2014"],
        ["alert", "A \u2014 Alert"],
        ["new_confusion", "C \u2014 New confusion"],
        ["voice", "V \u2014 responds to Voice"],
        ["pain", "P \u2014 responds to Pain"],
        ["unresponsive", "U \u2014 Unresponsive"],
      ]),
      air_or_oxygen: sel("news2-air-or-oxygen", [
        ["", "\u2014 not entered \u2014"],
        ["air", "Air"],
        ["oxygen", "Supplemental oxygen"],
      ]),
      spo2_scale: sel("news2-spo2-scale", [
        ["", "\u2014 unchanged \u2014"],
        ["scale1", "Scale 1 (default)"],
        ["scale2", "Scale 2 (hypercapnic, target 88\u201392 %)"],
      ]),
      respiration_rate: num("news2-respiration-rate", "/min"),
      temperature: num("news2-temperature", "\u00b0C"),
      systolic: num("news2-systolic", "mmHg"),
    };
    const labels: Record<News2Field, string> = {
      consciousness: "Consciousness (ACVPU)",
      air_or_oxygen: "Air or oxygen",
      spo2_scale: "SpO2 scale",
      respiration_rate: "Respiration rate (manual) /min",
      temperature: "Temperature (manual) \u00b0C",
      systolic: "Systolic BP (manual) mmHg",
    };
    const errs = {} as Record<News2Field, HTMLSpanElement>;
    const rows = (Object.keys(inputs) as News2Field[]).map((k) => {
      const err = h("span", { class: "field-error", testid: `news2-${k}-error` });
      err.hidden = true;
      errs[k] = err;
      const extra = k === "spo2_scale" ? h("span", { class: "field-note", text: "Scale 2 only when a clinician sets it for this patient." }) : null;
      return h("div", { class: "field" }, h("label", { text: labels[k], attrs: { for: inputs[k].id } }), inputs[k], extra, err);
    });
    const error = h("div", { class: "command-error", testid: "news2-error", attrs: { role: "alert" } });
    error.hidden = true;
    const submit = h("button", { class: "btn btn-primary", testid: "news2-submit", text: "Record", attrs: { type: "submit" } });
    const cancel = h("button", { class: "btn", testid: "news2-cancel", text: "Cancel", attrs: { type: "button" } });
    const form = h(
      "form",
      { class: "news2-form", attrs: { novalidate: "" } },
      h("h2", { text: `NEWS2 observations \u2014 ${bed.label}` }),
      h("p", { class: "field-note", text: `Recorded as ${user}. Leave a field empty to keep its last value.` }),
      h("div", { class: "field-grid" }, ...rows),
      error,
      h("div", { class: "modal-actions" }, cancel, submit),
    );
    const modal = this.open(form, "news2-dialog", `NEWS2 observations, ${bed.label}`);
    cancel.addEventListener("click", () => this.close());
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (modal.busy) return;
      setHidden(error, true);
      const form: Record<News2Field, string> = {
        consciousness: inputs.consciousness.value,
        air_or_oxygen: inputs.air_or_oxygen.value,
        spo2_scale: inputs.spo2_scale.value,
        respiration_rate: inputs.respiration_rate.value,
        temperature: inputs.temperature.value,
        systolic: inputs.systolic.value,
      };
      const v = validateNews2(form);
      for (const k of Object.keys(errs) as News2Field[]) {
        const msg = v.ok ? undefined : v.errors[k];
        setText(errs[k], msg ?? "");
        setHidden(errs[k], !msg);
        inputs[k].setAttribute("aria-invalid", msg ? "true" : "false");
      }
      if (!v.ok) return;
      modal.busy = true;
      submit.disabled = true;
      cancel.disabled = true;
      setText(submit, "Recording\u2026");
      // One command per observation, in order; stop at the first failure and say which.
      (async () => {
        for (const entry of v.entries) {
          try {
            await this.deps.news2Enter(bed.bed, entry);
          } catch (err) {
            throw { entry, err };
          }
        }
      })()
        .then(() => {
          modal.busy = false;
          this.close();
        })
        .catch((x: { entry: News2Entry; err: unknown }) => {
          modal.busy = false;
          submit.disabled = false;
          cancel.disabled = false;
          setText(submit, "Record");
          const i = v.entries.indexOf(x.entry);
          const done = i > 0 ? ` (${i} of ${v.entries.length} recorded before it)` : "";
          setText(error, `Could not record ${labels[x.entry.parameter as News2Field] ?? x.entry.parameter}${done}: ${commandErrorText(toCommandError(x.err))}`);
          setHidden(error, false);
        });
    });
    inputs.consciousness.focus();
  }

  // ---------------------------------------------------------------- devices

  /** Scan for Bluetooth devices (nearest first), choose one and what it is, assign it to the bed. */
  openAddDevice(bed: BedView): void {
    const status = h("div", { class: "scan-status", testid: "scan-status", attrs: { role: "status" } });
    const list = h("div", { class: "scan-list", testid: "scan-results", attrs: { role: "radiogroup", "aria-label": "Devices found" } });
    const scan = h("button", { class: "btn btn-primary", testid: "scan", text: "Scan (5 s)", attrs: { type: "button" } });
    const kind = h("select", { attrs: { id: "assign-kind", "data-testid": "assign-kind" } });
    const assign = h("button", { class: "btn btn-primary", testid: "assign", text: `Assign to ${bed.label}`, attrs: { type: "button" } });
    const cancel = h("button", { class: "btn", testid: "add-device-cancel", text: "Close", attrs: { type: "button" } });
    const error = h("div", { class: "command-error", testid: "add-device-error", attrs: { role: "alert" } });
    error.hidden = true;
    assign.disabled = true;
    kind.disabled = true;
    let chosen: ScanResult | null = null;
    const kindField = h("div", { class: "field" }, h("label", { text: "It measures", attrs: { for: "assign-kind" } }), kind);
    kindField.hidden = true;

    const panel = h(
      "div",
      { class: "add-device" },
      h("h2", { text: `Add a device to ${bed.label}` }),
      h("p", { class: "field-note", text: "Switch the device on and hold it near this workstation, then scan." }),
      h("div", { class: "scan-row" }, scan, status),
      list,
      error,
      kindField,
      h("div", { class: "modal-actions" }, cancel, assign),
    );
    const modal = this.open(panel, "add-device-dialog", `Add a device to ${bed.label}`);
    cancel.addEventListener("click", () => this.close());

    const choose = (r: ScanResult, row: HTMLElement) => {
      chosen = r;
      for (const el of list.querySelectorAll(".scan-result")) el.classList.toggle("is-chosen", el === row);
      for (const el of list.querySelectorAll<HTMLInputElement>("input[type=radio]")) el.checked = el.value === r.address;
      kind.replaceChildren();
      const kinds = r.kinds.length ? r.kinds : KIND_OPTIONS;
      for (const k of kinds) kind.append(h("option", { text: kindText(k), attrs: { value: k } }));
      kind.disabled = false;
      kindField.hidden = false;
      assign.disabled = false;
      const elsewhere = r.assigned_bed && r.assigned_bed !== bed.bed;
      setText(assign, elsewhere ? `Move to ${bed.label}` : `Assign to ${bed.label}`);
      // The serial on the device's label tells two devices of the same name apart (issue 13).
      const identity = row.querySelector<HTMLElement>(".scan-identity")!;
      if (identity.dataset.state === "read") return;
      identity.dataset.state = "reading";
      setText(identity, "reading serial number\u2026");
      this.deps
        .deviceIdentify(r.address)
        .then((info) => {
          identity.dataset.state = "read";
          setText(identity, identityText(info));
        })
        .catch((e: unknown) => {
          identity.dataset.state = "failed";
          setText(identity, `serial number not read: ${commandErrorText(toCommandError(e))}`);
        });
    };

    scan.addEventListener("click", () => {
      if (modal.busy) return;
      modal.busy = true;
      scan.disabled = true;
      assign.disabled = true;
      setHidden(error, true);
      setText(status, "Scanning for 5 s\u2026");
      list.replaceChildren();
      chosen = null;
      kindField.hidden = true;
      this.deps
        .devicesScan(5)
        .then((found) => {
          setText(status, found.length === 0 ? "No devices found. Is the device on and in pairing mode?" : `${found.length} found, nearest first`);
          for (const r of found) {
            const radio = h("input", { attrs: { type: "radio", name: "scan-choice", value: r.address, "aria-label": r.name ?? r.address } });
            const bars = rssiBars(r.rssi);
            // A device already at another bed is flagged: assigning it here moves it (issue 13).
            const elsewhere = r.assigned_bed !== null && r.assigned_bed !== bed.bed;
            const assigned = r.assigned_bed
              ? h("span", {
                  class: `scan-assigned${r.assigned_bed === bed.bed ? " is-here" : " is-elsewhere"}`,
                  testid: `scan-assigned-${r.address}`,
                  text: elsewhere ? `already assigned to ${this.deps.bedLabel(r.assigned_bed)}: assigning moves it` : `assigned to ${this.deps.bedLabel(r.assigned_bed)}`,
                })
              : null;
            const security = h("span", {
              class: `scan-security${r.bonded === true ? "" : " is-unbonded"}`,
              testid: `scan-security-${r.address}`,
              text: bondedText(r.bonded),
            });
            const row = h(
              "label",
              { class: "scan-result", testid: `scan-result-${r.address}` },
              radio,
              h("span", { class: "scan-name", text: r.name || "(unnamed device)" }),
              h("span", { class: `scan-rssi bars-${bars}`, text: rssiText(r.rssi), attrs: { title: "Signal strength" } }),
              h("span", { class: "scan-addr mono", text: r.address }),
              h("span", { class: "scan-kinds", text: r.kinds.length ? r.kinds.map(kindText).join(", ") : "unknown" }),
              security,
              assigned,
              h("span", { class: "scan-identity", testid: `scan-identity-${r.address}` }),
            );
            radio.addEventListener("change", () => choose(r, row));
            list.append(row);
          }
        })
        .catch((e: unknown) => {
          setText(status, "");
          setText(error, scanErrorText(e));
          setHidden(error, false);
        })
        .finally(() => {
          modal.busy = false;
          scan.disabled = false;
          if (chosen) assign.disabled = false;
        });
    });

    assign.addEventListener("click", () => {
      if (modal.busy || !chosen) return;
      const r = chosen;
      modal.busy = true;
      assign.disabled = true;
      scan.disabled = true;
      setHidden(error, true);
      this.deps
        .deviceAssign(r.address, bed.bed, kind.value)
        .then(() => {
          modal.busy = false;
          this.close();
        })
        .catch((e: unknown) => {
          modal.busy = false;
          assign.disabled = false;
          scan.disabled = false;
          setText(error, `Could not assign: ${commandErrorText(toCommandError(e))}`);
          setHidden(error, false);
        });
    });
    scan.focus();
  }

  /** Confirm, then remove a device from its bed. */
  openRemoveDevice(bed: BedView, d: DeviceView): void {
    const error = h("div", { class: "command-error", testid: "remove-device-error", attrs: { role: "alert" } });
    error.hidden = true;
    const confirm = h("button", { class: "btn btn-danger", testid: "remove-device-confirm", text: "Remove", attrs: { type: "button" } });
    const cancel = h("button", { class: "btn", testid: "remove-device-cancel", text: "Cancel", attrs: { type: "button" } });
    const panel = h(
      "div",
      {},
      h("h2", { text: `Remove ${d.label} from ${bed.label}?` }),
      h("p", {}, "Device ", h("strong", { class: "mono", text: d.device }), " stops feeding this bed. Its readings so far are kept."),
      error,
      h("div", { class: "modal-actions" }, cancel, confirm),
    );
    const modal = this.open(panel, "remove-device-dialog", `Remove ${d.label}`);
    cancel.addEventListener("click", () => this.close());
    confirm.addEventListener("click", () => {
      if (modal.busy) return;
      modal.busy = true;
      confirm.disabled = true;
      cancel.disabled = true;
      this.deps
        .deviceRemove(d.device)
        .then(() => {
          modal.busy = false;
          this.close();
        })
        .catch((e: unknown) => {
          modal.busy = false;
          confirm.disabled = false;
          cancel.disabled = false;
          const err = toCommandError(e);
          setText(
            error,
            /not found|unknown command/i.test(err.message)
              ? `Removing devices is not available in this version of Vigil (${err.message})`
              : `Could not remove: ${commandErrorText(err)}`,
          );
          setHidden(error, false);
        });
    });
    cancel.focus();
  }
}
