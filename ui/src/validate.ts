// Pure validation of the admit form.

import type { AdmitRequest, CommandError, PatientCategory } from "./contract";

export interface AdmitForm {
  display_name: string;
  mrn: string;
  date_of_birth: string;
  category: string;
}

export type AdmitField = keyof AdmitForm;

export type AdmitValidation =
  | { ok: true; request: AdmitRequest }
  | { ok: false; errors: Partial<Record<AdmitField, string>> };

const CATEGORIES: readonly PatientCategory[] = ["adult", "paediatric", "neonatal"];

function isCalendarDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  if (mo < 1 || mo > 12 || d < 1) return false;
  const days = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  return d <= days;
}

/** `today` is the local date as YYYY-MM-DD (passed in so this stays pure). */
export function validateAdmit(bed: string, form: AdmitForm, today: string): AdmitValidation {
  const errors: Partial<Record<AdmitField, string>> = {};
  const name = form.display_name.trim().replace(/\s+/g, " ");
  const mrn = form.mrn.trim();
  const dob = form.date_of_birth.trim();

  if (!name) errors.display_name = "Enter the patient's name.";
  else if (name.length > 100) errors.display_name = "Name is too long (100 characters at most).";

  if (!mrn) errors.mrn = "Enter the MRN.";
  else if (!/^[A-Za-z0-9][A-Za-z0-9\-/.]{0,39}$/.test(mrn)) errors.mrn = "MRN: letters, digits, - / . only (40 at most).";

  if (!dob) errors.date_of_birth = "Enter the date of birth.";
  else if (!isCalendarDate(dob)) errors.date_of_birth = "Date of birth must be a real date, YYYY-MM-DD.";
  else if (dob > today) errors.date_of_birth = "Date of birth is in the future.";
  else if (dob < "1900-01-01") errors.date_of_birth = "Date of birth is before 1900.";

  if (!CATEGORIES.includes(form.category as PatientCategory)) errors.category = "Choose a category.";

  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return {
    ok: true,
    request: { bed, display_name: name, mrn, date_of_birth: dob, category: form.category as PatientCategory },
  };
}

/** Local date "YYYY-MM-DD". */
export function localIsoDate(d: Date): string {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

/** Whatever a command rejected with, as {code, message}. */
export function toCommandError(e: unknown): CommandError {
  if (e && typeof e === "object" && "code" in e && "message" in e) {
    const o = e as { code: unknown; message: unknown };
    return { code: String(o.code), message: String(o.message) };
  }
  if (typeof e === "string") return { code: "error", message: e };
  if (e instanceof Error) return { code: "error", message: e.message };
  return { code: "error", message: "Unknown error" };
}

export function commandErrorText(e: CommandError): string {
  return `${e.message} (${e.code})`;
}
