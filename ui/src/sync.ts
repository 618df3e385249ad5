// Pure text for FHIR upload: the header indicator, dead letters, patient matches,
// and the header clock. No DOM, no clocks: callers pass times in.

import type { CommandError, DeadLetter, PatientMatch, SyncView } from "./contract";
import { displayUnit, mdcLabel } from "./codes";
import { formatAge, formatHms, formatNumber, specialText } from "./format";
import { commandErrorText } from "./validate";

/** ok: the last upload attempt worked. down: it failed. starting: no attempt has finished yet. unknown: the status itself cannot be read. */
export type SyncLevel = "ok" | "down" | "starting" | "unknown";

export interface SyncModel {
  level: SyncLevel;
  /** Text with its own symbol, so the state never rests on colour alone. */
  text: string;
  /** "312 waiting, oldest 4 min" (+ readings held for a patient link). */
  pending: string;
  /** "2 refused", "2 refused, 1 parked" */
  deadLetters: string;
  /** Refused + parked: readings set aside that need someone to act. */
  deadCount: number;
  /** Hover text: server, last error, uploaded count. */
  title: string;
}

/** "312 waiting, oldest 4 min"; "nothing waiting" when the outbox is empty. */
export function pendingText(pending: number, oldestAgeS: number | null): string {
  if (pending <= 0) return "nothing waiting";
  return oldestAgeS === null ? `${pending} waiting` : `${pending} waiting, oldest ${formatAge(oldestAgeS * 1000)}`;
}

export function syncModel(s: SyncView): SyncModel {
  const level: SyncLevel = s.healthy ? "ok" : s.last_error === null ? "starting" : "down";
  const text = level === "ok" ? "FHIR \u2713 synced" : level === "down" ? "FHIR \u26A0 NOT SYNCING" : "FHIR \u2026 connecting";
  let pending = pendingText(s.pending, s.oldest_pending_age_s);
  if (s.waiting_for_patient > 0) pending += ` (${s.waiting_for_patient} need a patient link)`;
  if (s.audit_pending > 0) pending += `; ${s.audit_pending} audit record(s) to send`;
  const deadLetters = s.parked > 0 ? `${s.dead_letters} refused, ${s.parked} parked` : `${s.dead_letters} refused`;
  const title = [
    `${text}: ${pending}, ${deadLetters}`,
    `FHIR server: ${s.server}`,
    `${s.uploaded} uploaded since start`,
    s.last_error ? `Last error: ${s.last_error}` : null,
    s.last_set_aside && s.dead_letters + s.parked > 0 ? `Last refused or parked: ${s.last_set_aside}` : null,
    s.duplicate_devices > 0 ? `${s.duplicate_devices} device(s) exist more than once on the server; Vigil uses the one with the lowest id` : null,
  ]
    .filter(Boolean)
    .join("\n");
  return { level, text, pending, deadLetters, deadCount: s.dead_letters + s.parked, title };
}

/** The indicator when sync_status keeps failing: never leave an old "synced" up. */
export function syncUnknownModel(err: CommandError): SyncModel {
  return {
    level: "unknown",
    text: "FHIR ? status unknown",
    pending: "",
    deadLetters: "",
    deadCount: 0,
    title: `Cannot read the FHIR upload status: ${commandErrorText(err)}`,
  };
}

// ------------------------------------------------------------------ dead letters

export interface DeadLetterRow {
  id: number;
  /** "2024-05-01 12:03:04" local, when the server refused it. */
  when: string;
  bed: string;
  measurement: string;
  value: string;
  /** "refused" by the server, or "parked" after failing again and again. */
  kind: string;
  reason: string;
}

/** After a re-queue: what happened, in words. */
export function requeueText(n: number): string {
  if (n === 0) return "Nothing to send again.";
  return `${n} reading${n === 1 ? "" : "s"} queued for upload again; each is sent once.`;
}

function localDate(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

/** Newest first; times local. */
export function deadLetterRows(letters: DeadLetter[], bedLabel: (bed: string) => string): DeadLetterRow[] {
  return letters
    .slice()
    .sort((a, b) => Date.parse(b.at) - Date.parse(a.at) || b.id - a.id)
    .map((d) => {
      const ms = Date.parse(d.at);
      const r = d.reading;
      const unit = r.unit ? ` ${displayUnit(r.unit)}` : "";
      const value = r.value.kind === "number" ? `${formatNumber(r.value.value, r.code)}${unit}` : specialText(r.value.value);
      return {
        id: d.id,
        when: Number.isFinite(ms) ? `${localDate(ms)} ${formatHms(ms)}` : d.at,
        bed: bedLabel(r.bed),
        measurement: mdcLabel(r.code),
        value,
        kind: d.kind === "parked" ? "parked" : "refused",
        reason: d.reason,
      };
    });
}

// ------------------------------------------------------------------ FHIR patient search

/** FHIR errors in words. */
export function fhirErrorText(e: CommandError): string {
  if (e.code === "no_fhir") return "No FHIR server is configured for this site.";
  if (/not found|unknown command|not allowed/i.test(e.message)) return `FHIR is not available in this version of Vigil (${e.message})`;
  if (e.code === "fhir") return `FHIR server: ${e.message}`;
  return commandErrorText(e);
}

const GENDER: Record<string, string> = { male: "male", female: "female", other: "other", unknown: "unknown" };

/** One line for the match list: "Jane Doe · born 1960-01-31 · female · MRN 123". */
export function matchText(m: PatientMatch): string {
  return [
    m.name || "(no name)",
    `born ${m.birth_date ?? "unknown"}`,
    m.gender ? (GENDER[m.gender] ?? m.gender) : "gender unknown",
    `MRN ${m.mrn ?? "unknown"}`,
  ].join(" \u00b7 ");
}

/**
 * Why a chosen FHIR patient may not be the patient being admitted, or null.
 * A date of birth that differs from the one typed is a wrong-patient risk: refuse.
 */
export function matchConflict(m: PatientMatch, form: { mrn: string; date_of_birth: string }): string | null {
  const mrn = form.mrn.trim();
  if (m.mrn !== null && mrn && m.mrn !== mrn) return `The FHIR patient's MRN (${m.mrn}) differs from the MRN entered (${mrn}).`;
  const dob = form.date_of_birth.trim();
  if (m.birth_date !== null && dob && m.birth_date !== dob)
    return `The FHIR patient's date of birth (${m.birth_date}) differs from the one entered (${dob}).`;
  return null;
}

// ------------------------------------------------------------------ header clock

/** Core time this far from the workstation clock is labelled "core time". */
export const CORE_CLOCK_LABEL_MS = 60_000;

export interface ClockModel {
  text: string;
  /** Shown small next to the time; "" when the core clock agrees with the wall clock. */
  label: string;
}

/** The header shows the core's clock (data times use it); the wall clock only before any data. */
export function clockModel(coreNowMs: number | null, wallNowMs: number): ClockModel {
  if (coreNowMs === null) return { text: formatHms(wallNowMs), label: "" };
  const differs = Math.abs(coreNowMs - wallNowMs) > CORE_CLOCK_LABEL_MS;
  return { text: formatHms(coreNowMs), label: differs ? "core time" : "" };
}
