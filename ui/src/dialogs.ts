// Admit and discharge dialogs. Modal overlays created on open and removed on close.

import type { AdmissionView, AdmitRequest, BedView } from "./contract";
import { h, setHidden, setText } from "./dom";
import { type AdmitField, commandErrorText, localIsoDate, toCommandError, validateAdmit } from "./validate";

export interface DialogDeps {
  admit(request: AdmitRequest): Promise<AdmissionView>;
  discharge(bed: string): Promise<void>;
  onAdmitted(bed: string, admission: AdmissionView): void;
  onDischarged(bed: string): void;
}

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
}
