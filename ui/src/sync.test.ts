import { describe, expect, it } from "vitest";
import type { DeadLetter, PatientMatch, SyncView } from "./contract";
import {
  CORE_CLOCK_LABEL_MS,
  clockModel,
  deadLetterRows,
  fhirErrorText,
  matchConflict,
  matchText,
  pendingText,
  requeueText,
  syncModel,
  syncUnknownModel,
} from "./sync";
import { formatHms } from "./format";

const base: SyncView = {
  server: "https://fhir.example/r4",
  healthy: true,
  pending: 0,
  waiting_for_patient: 0,
  oldest_pending_age_s: null,
  dead_letters: 0,
  parked: 0,
  last_set_aside: null,
  uploaded: 1200,
  last_error: null,
  duplicate_devices: 0,
  audit_pending: 0,
};

describe("sync status text", () => {
  it("says synced with a tick when the last attempt worked", () => {
    const m = syncModel(base);
    expect(m.level).toBe("ok");
    expect(m.text).toBe("FHIR \u2713 synced");
    expect(m.pending).toBe("nothing waiting");
    expect(m.deadLetters).toBe("0 refused");
    expect(m.title).toContain("https://fhir.example/r4");
    expect(m.title).toContain("1200 uploaded");
  });

  it("says NOT SYNCING with a warning sign when the last attempt failed, and why on hover", () => {
    const m = syncModel({ ...base, healthy: false, last_error: "HTTP 503", pending: 312, oldest_pending_age_s: 4 * 60 + 10, dead_letters: 2 });
    expect(m.level).toBe("down");
    expect(m.text).toBe("FHIR \u26A0 NOT SYNCING");
    expect(m.pending).toBe("312 waiting, oldest 4 min");
    expect(m.deadLetters).toBe("2 refused");
    expect(m.deadCount).toBe(2);
    expect(m.title).toContain("Last error: HTTP 503");
  });

  it("says audit records not yet on the server beside the readings", () => {
    expect(syncModel({ ...base, audit_pending: 3 }).pending).toBe("nothing waiting; 3 audit record(s) to send");
  });

  it("counts parked readings with the refused ones and says why the last was set aside", () => {
    const m = syncModel({ ...base, dead_letters: 2, parked: 1, last_set_aside: "HTTP 500 (error exception) after 5 attempts" });
    expect(m.deadLetters).toBe("2 refused, 1 parked");
    expect(m.deadCount).toBe(3);
    expect(m.title).toContain("Last refused or parked: HTTP 500 (error exception) after 5 attempts");
    // Nothing set aside any more (re-queued): no stale reason.
    expect(syncModel({ ...base, last_set_aside: "HTTP 422" }).title).not.toContain("HTTP 422");
  });

  it("does not claim failure before the first attempt finished", () => {
    const m = syncModel({ ...base, healthy: false, last_error: null });
    expect(m.level).toBe("starting");
    expect(m.text).toMatch(/connecting/);
    expect(m.text).not.toMatch(/synced/);
  });

  it("counts readings waiting for a patient link", () => {
    const m = syncModel({ ...base, pending: 40, oldest_pending_age_s: 30, waiting_for_patient: 12 });
    expect(m.pending).toBe("40 waiting, oldest 30 s (12 need a patient link)");
  });

  it("never leaves synced up when the status cannot be read", () => {
    const m = syncUnknownModel({ code: "locked", message: "Vigil is locked" });
    expect(m.level).toBe("unknown");
    expect(m.text).not.toMatch(/synced/);
    expect(m.title).toContain("locked");
  });
});

describe("pending age", () => {
  it("formats the oldest pending age", () => {
    expect(pendingText(0, null)).toBe("nothing waiting");
    expect(pendingText(0, 500)).toBe("nothing waiting");
    expect(pendingText(5, null)).toBe("5 waiting");
    expect(pendingText(1, 0)).toBe("1 waiting, oldest 0 s");
    expect(pendingText(1, 59)).toBe("1 waiting, oldest 59 s");
    expect(pendingText(1, 60)).toBe("1 waiting, oldest 1 min");
    expect(pendingText(312, 4 * 60 + 59)).toBe("312 waiting, oldest 4 min");
    expect(pendingText(2, 3 * 3600 + 5 * 60)).toBe("2 waiting, oldest 3 h 05 min");
    expect(pendingText(2, 3 * 86400)).toBe("2 waiting, oldest 3 d");
  });
});

describe("dead letters", () => {
  const reading = (code: number, value: DeadLetter["reading"]["value"], unit: string, bed = "bed-1"): DeadLetter["reading"] => ({
    bed,
    admission: "a1",
    device: "sim-bed-1-hr",
    code,
    value,
    unit,
    device_time: null,
    received: "2024-05-01T10:00:00Z",
    source: "simulated",
  });

  it("lists newest first with bed label, measurement, value and the server's reason", () => {
    const letters: DeadLetter[] = [
      { id: 1, at: "2024-05-01T10:00:00Z", reading: reading(147842, { kind: "number", value: 72 }, "/min"), reason: "Observation.value: bad", kind: "refused" },
      { id: 2, at: "2024-05-01T10:05:00Z", reading: reading(150364, { kind: "number", value: 36.94 }, "Cel", "bed-2"), reason: "invalid code", kind: "refused" },
      { id: 3, at: "2024-05-01T10:05:00Z", reading: reading(150456, { kind: "special", value: "nan" }, "%"), reason: "r", kind: "parked" },
    ];
    const rows = deadLetterRows(letters, (b) => (b === "bed-1" ? "Bed 1" : "Bed 2"));
    expect(rows.map((r) => r.id)).toEqual([3, 2, 1]);
    expect(rows[1]).toMatchObject({ bed: "Bed 2", measurement: "Temp", value: "36.9 \u00b0C", reason: "invalid code" });
    expect(rows[2]).toMatchObject({ bed: "Bed 1", measurement: "HR", value: "72 /min" });
    expect(rows[0].value).toBe("NaN (invalid)");
    expect(rows.map((r) => r.kind)).toEqual(["parked", "refused", "refused"]);
    expect(rows[2].when).toContain(formatHms(Date.parse("2024-05-01T10:00:00Z")));
  });

  it("says what a re-queue did", () => {
    expect(requeueText(0)).toBe("Nothing to send again.");
    expect(requeueText(1)).toBe("1 reading queued for upload again; each is sent once.");
    expect(requeueText(3)).toMatch(/^3 readings queued/);
  });

  it("keeps an unparseable time as sent", () => {
    const rows = deadLetterRows([{ id: 1, at: "garbage", reading: reading(147842, { kind: "number", value: 1 }, ""), reason: "", kind: "refused" }], (b) => b);
    expect(rows[0].when).toBe("garbage");
    expect(rows[0].value).toBe("1");
  });
});

describe("FHIR patient matches", () => {
  const m: PatientMatch = { reference: "Patient/7", mrn: "MRN-1", name: "Jane Doe", birth_date: "1960-01-31", gender: "female" };

  it("shows name, DOB, gender and MRN", () => {
    expect(matchText(m)).toBe("Jane Doe \u00b7 born 1960-01-31 \u00b7 female \u00b7 MRN MRN-1");
    expect(matchText({ ...m, name: "", birth_date: null, gender: null, mrn: null })).toBe(
      "(no name) \u00b7 born unknown \u00b7 gender unknown \u00b7 MRN unknown",
    );
  });

  it("refuses a different date of birth or MRN, allows blanks", () => {
    expect(matchConflict(m, { mrn: "MRN-1", date_of_birth: "1960-01-31" })).toBeNull();
    expect(matchConflict(m, { mrn: " MRN-1 ", date_of_birth: "" })).toBeNull();
    expect(matchConflict({ ...m, birth_date: null }, { mrn: "MRN-1", date_of_birth: "1970-01-01" })).toBeNull();
    expect(matchConflict(m, { mrn: "MRN-1", date_of_birth: "1960-01-30" })).toMatch(/date of birth \(1960-01-31\)/);
    expect(matchConflict(m, { mrn: "MRN-2", date_of_birth: "1960-01-31" })).toMatch(/MRN \(MRN-1\)/);
  });

  it("explains FHIR errors in words", () => {
    expect(fhirErrorText({ code: "no_fhir", message: "x" })).toMatch(/No FHIR server is configured/);
    expect(fhirErrorText({ code: "fhir", message: "HTTP 401 Unauthorized" })).toBe("FHIR server: HTTP 401 Unauthorized");
    expect(fhirErrorText({ code: "error", message: "Command fhir_find_patient not found" })).toMatch(/not available in this version/);
    expect(fhirErrorText({ code: "store", message: "bed empty" })).toBe("bed empty (store)");
  });
});

describe("header clock", () => {
  const wall = Date.parse("2024-05-01T10:00:00Z");

  it("shows the core clock, labelled only when it differs from the wall clock by more than 60 s", () => {
    expect(clockModel(wall + 5_000, wall)).toEqual({ text: formatHms(wall + 5_000), label: "" });
    expect(clockModel(wall + CORE_CLOCK_LABEL_MS, wall).label).toBe("");
    expect(clockModel(wall + CORE_CLOCK_LABEL_MS + 1, wall)).toEqual({ text: formatHms(wall + CORE_CLOCK_LABEL_MS + 1), label: "core time" });
    expect(clockModel(wall - 3_600_000, wall).label).toBe("core time");
  });

  it("falls back to the wall clock before any core data", () => {
    expect(clockModel(null, wall)).toEqual({ text: formatHms(wall), label: "" });
  });
});
