import { describe, expect, it } from "vitest";
import { toCommandError, validateAdmit } from "./validate";

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
