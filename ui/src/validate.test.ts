import { describe, expect, it } from "vitest";
import { normaliseInitials, toCommandError, validateAdmit, validateNews2 } from "./validate";

const TODAY = "2025-06-15";
const good = { display_name: "  Jane   Doe ", mrn: " MRN-001 ", date_of_birth: "1980-02-29", category: "adult" };

describe("admit validation", () => {
  it("accepts a complete form and normalises it", () => {
    const v = validateAdmit("bed-1", good, TODAY);
    expect(v).toEqual({
      ok: true,
      request: { bed: "bed-1", display_name: "Jane Doe", mrn: "MRN-001", date_of_birth: "1980-02-29", category: "adult" },
    });
  });

  it("requires every field", () => {
    const v = validateAdmit("bed-1", { display_name: " ", mrn: "", date_of_birth: "", category: "" }, TODAY);
    expect(v.ok).toBe(false);
    if (!v.ok) expect(Object.keys(v.errors).sort()).toEqual(["category", "date_of_birth", "display_name", "mrn"]);
  });

  it.each(["1981-02-29", "2020-13-01", "2020-00-10", "2020-1-1", "01/02/2020", "2025-06-16", "1899-12-31"])("rejects date of birth %s", (dob) => {
    const v = validateAdmit("bed-1", { ...good, date_of_birth: dob }, TODAY);
    expect(v.ok).toBe(false);
    if (!v.ok) expect(Object.keys(v.errors)).toEqual(["date_of_birth"]);
  });

  it("accepts today as date of birth (neonates)", () => {
    expect(validateAdmit("bed-1", { ...good, date_of_birth: TODAY, category: "neonatal" }, TODAY).ok).toBe(true);
  });

  it("rejects unknown categories", () => {
    expect(validateAdmit("bed-1", { ...good, category: "child" }, TODAY).ok).toBe(false);
  });
});

describe("command errors", () => {
  it("normalises whatever a command rejects with", () => {
    expect(toCommandError({ code: "bed_occupied", message: "Bed 1 is occupied" })).toEqual({ code: "bed_occupied", message: "Bed 1 is occupied" });
    expect(toCommandError("boom")).toEqual({ code: "error", message: "boom" });
    expect(toCommandError(new Error("x"))).toEqual({ code: "error", message: "x" });
    expect(toCommandError(undefined)).toEqual({ code: "error", message: "Unknown error" });
  });
});

describe("initials", () => {
  it("accepts 2-4 letters, upper-cased", () => {
    expect(normaliseInitials(" ab ")).toBe("AB");
    expect(normaliseInitials("xyzw")).toBe("XYZW");
    expect(normaliseInitials("a")).toBeNull();
    expect(normaliseInitials("abcde")).toBeNull();
    expect(normaliseInitials("a1")).toBeNull();
    expect(normaliseInitials("")).toBeNull();
  });
});

describe("NEWS2 entry", () => {
  const empty = { consciousness: "", air_or_oxygen: "", spo2_scale: "", respiration_rate: "", temperature: "", systolic: "" };
  it("sends only filled fields, as tagged entries", () => {
    const v = validateNews2({ ...empty, consciousness: "voice", air_or_oxygen: "oxygen", temperature: "38,2" });
    expect(v).toEqual({
      ok: true,
      entries: [
        { parameter: "consciousness", value: "voice" },
        { parameter: "air_or_oxygen", value: "oxygen" },
        { parameter: "temperature", value: 38.2 },
      ],
    });
  });
  it("rejects implausible numbers and an empty form", () => {
    expect(validateNews2({ ...empty, temperature: "370" }).ok).toBe(false);
    expect(validateNews2({ ...empty, systolic: "-5" }).ok).toBe(false);
    expect(validateNews2({ ...empty, respiration_rate: "abc" }).ok).toBe(false);
    expect(validateNews2(empty).ok).toBe(false);
  });
});
