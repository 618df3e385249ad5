// Admit and discharge dialogs. Modal overlays created on open and removed on close.

import type { AdmissionView, AdmitRequest, BedView, DeviceView, News2Entry, ScanResult } from "./contract";
import { h, setHidden, setText } from "./dom";
import { kindText, rssiBars, rssiText } from "./format";
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
  news2Enter(bed: string, entry: News2Entry, user: string): Promise<void>;
  devicesScan(seconds: number): Promise<ScanResult[]>;
  deviceAssign(address: string, bed: string, kind: string): Promise<void>;
  deviceRemove(address: string): Promise<void>;
  /** Bed label for "assigned to Bed 2". */
  bedLabel(bed: string): string;
}

/** Scan errors in words; "no_adapter" is the simulated workstation. */
export function scanErrorText(e: unknown): string {
  const err = toCommandError(e);
  if (err.code === "no_adapter") return "No Bluetooth adapter: this workstation runs simulated devices";
  if (/not found|unknown command|not allowed/i.test(err.message))
    return `Device scanning is not available in this version of Vigil (${err.message})`;
  return `Could not scan: ${commandErrorText(err)}`;
}

const KIND_OPTIONS = ["heart_rate_strap", "pulse_oximeter", "respiration_sensor", "blood_pressure_cuff", "thermometer"];

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
            await this.deps.news2Enter(bed.bed, entry, user);
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
            const assigned = r.assigned_bed
              ? h("span", { class: `scan-assigned${r.assigned_bed === bed.bed ? " is-here" : ""}`, text: `assigned to ${this.deps.bedLabel(r.assigned_bed)}` })
              : null;
            const row = h(
              "label",
              { class: "scan-result", testid: `scan-result-${r.address}` },
              radio,
              h("span", { class: "scan-name", text: r.name || "(unnamed device)" }),
              h("span", { class: `scan-rssi bars-${bars}`, text: rssiText(r.rssi), attrs: { title: "Signal strength" } }),
              h("span", { class: "scan-addr mono", text: r.address }),
              h("span", { class: "scan-kinds", text: r.kinds.length ? r.kinds.map(kindText).join(", ") : "unknown" }),
              assigned,
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
