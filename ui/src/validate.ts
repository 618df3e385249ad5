// Pure validation of the admit form.

import type { AdmitRequest, CommandError, News2Entry, PatientCategory } from "./contract";

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

// ------------------------------------------------------------------ the nurse's initials

/** Trimmed, upper-case initials (2–4 letters), or null when not acceptable. */
export function normaliseInitials(s: string): string | null {
  const t = s.trim().toUpperCase();
  return /^\p{L}{2,4}$/u.test(t) ? t : null;
}

// ------------------------------------------------------------------ NEWS2 nurse entry

export interface News2Form {
  consciousness: string; // "" = not entered
  air_or_oxygen: string;
  spo2_scale: string;
  respiration_rate: string;
  temperature: string;
  systolic: string;
}

export type News2Field = keyof News2Form;

export type News2Validation = { ok: true; entries: News2Entry[] } | { ok: false; errors: Partial<Record<News2Field, string>> };

const CONSCIOUSNESS = ["alert", "new_confusion", "voice", "pain", "unresponsive"] as const;

/** Plausible manual entries (catches typos such as 370 for 37.0). */
const NUMERIC_RANGES: Record<"respiration_rate" | "temperature" | "systolic", [number, number, string]> = {
  respiration_rate: [0, 80, "Respiration rate must be 0\u201380 /min."],
  temperature: [25, 45, "Temperature must be 25.0\u201345.0 \u00b0C."],
  systolic: [30, 300, "Systolic must be 30\u2013300 mmHg."],
};

/** Empty fields are not sent; at least one field must be filled. */
export function validateNews2(form: News2Form): News2Validation {
  const errors: Partial<Record<News2Field, string>> = {};
  const entries: News2Entry[] = [];
  if (form.consciousness) {
    if ((CONSCIOUSNESS as readonly string[]).includes(form.consciousness))
      entries.push({ parameter: "consciousness", value: form.consciousness as (typeof CONSCIOUSNESS)[number] });
    else errors.consciousness = "Choose A, C, V, P or U.";
  }
  if (form.air_or_oxygen) {
    if (form.air_or_oxygen === "air" || form.air_or_oxygen === "oxygen") entries.push({ parameter: "air_or_oxygen", value: form.air_or_oxygen });
    else errors.air_or_oxygen = "Choose air or oxygen.";
  }
  if (form.spo2_scale) {
    if (form.spo2_scale === "scale1" || form.spo2_scale === "scale2") entries.push({ parameter: "spo2_scale", value: form.spo2_scale });
    else errors.spo2_scale = "Choose scale 1 or 2.";
  }
  for (const k of ["respiration_rate", "temperature", "systolic"] as const) {
    const raw = form[k].trim().replace(",", ".");
    if (!raw) continue;
    const v = Number(raw);
    const [lo, hi, msg] = NUMERIC_RANGES[k];
    if (!/^\d+(\.\d+)?$/.test(raw) || !Number.isFinite(v) || v < lo || v > hi) errors[k] = msg;
    else entries.push({ parameter: k, value: v });
  }
  if (Object.keys(errors).length) return { ok: false, errors };
  if (entries.length === 0) return { ok: false, errors: { consciousness: "Enter at least one observation." } };
  return { ok: true, entries };
}
