import { describe, expect, it } from "vitest";
import type { SessionView } from "./contract";
import { may, newAdminError, sessionAttributes, sessionLabel, signInTexts } from "./signin";

const nurse: SessionView = { user: "ann", role: "nurse", may: ["monitor", "view_patient", "admit", "acknowledge", "pause_audio"] };

describe("what the signed-in user may do", () => {
  it("signed out: monitoring only", () => {
    expect(may(null, "monitor")).toBe(true);
    expect(may(null, "acknowledge")).toBe(false);
    expect(may(null, "view_patient")).toBe(false);
  });
  it("follows the core's list for the session", () => {
    expect(may(nurse, "admit")).toBe(true);
    expect(may(nurse, "alarm_log")).toBe(false);
    expect(may(nurse, "manage_users")).toBe(false);
  });
  it("labels the header with name and role", () => {
    expect(sessionLabel(nurse)).toBe("ann (nurse)");
    expect(sessionLabel(null)).toBeNull();
  });
  it("gives the stylesheet the session and the permissions", () => {
    expect(sessionAttributes(null)).toEqual({ session: "out", may: "" });
    expect(sessionAttributes(nurse)).toEqual({ session: "in", may: "monitor view_patient admit acknowledge pause_audio" });
  });
});

describe("sign-in dialog", () => {
  it("offers the first admin when there is no user", () => {
    expect(signInTexts({ has_users: false }, null)[0]).toBe("Create the first administrator");
    expect(signInTexts({ has_users: true }, null)[0]).toBe("Sign in");
    expect(signInTexts({ has_users: true }, "Sign in to acknowledge.")[1]).toBe("Sign in to acknowledge.");
  });
  it("checks the first admin's name and password", () => {
    expect(newAdminError("admin", "long enough pw", "long enough pw")).toBeNull();
    expect(newAdminError("bad name", "long enough pw", "long enough pw")).toMatch(/user name/);
    expect(newAdminError("admin", "short", "short")).toMatch(/at least 12/);
    expect(newAdminError("admin", "long enough pw", "long enough px")).toMatch(/differ/);
  });
});
