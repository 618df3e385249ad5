import { describe, expect, it } from "vitest";
import type { SessionView } from "./contract";
import { TOUCH_EVERY_MS, pinError, headerLabel, offersBreakGlass, reasonError, may, newAdminError, sessionAttributes, sessionChanged, sessionLabel, shouldTouch, signInTexts } from "./signin";

const nurse: SessionView = { user: "ann", role: "nurse", may: ["monitor", "view_patient", "admit", "acknowledge", "pause_audio"], break_glass_s: null, can_set_pin: true };
const viewer: SessionView = { user: "vic", role: "viewer", may: ["monitor", "view_patient"], break_glass_s: null, can_set_pin: true };

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
    expect(signInTexts({ has_users: false, users_lost: false }, null)[0]).toBe("Create the first administrator");
    expect(signInTexts({ has_users: true, users_lost: false }, null)[0]).toBe("Sign in");
    expect(signInTexts({ has_users: true, users_lost: false }, "Sign in to acknowledge.")[1]).toBe("Sign in to acknowledge.");
    // A store replaced after damage: never the first-admin offer, but the installer's way back.
    const [title, text, submit] = signInTexts({ has_users: false, users_lost: true }, "Sign in to acknowledge.");
    expect(title).toBe("No one can sign in");
    expect(text).toContain("vigil user add");
    expect(submit).toBe("");
  });
  it("checks the first admin's name and password", () => {
    expect(newAdminError("admin", "long enough pw", "long enough pw")).toBeNull();
    expect(newAdminError("bad name", "long enough pw", "long enough pw")).toMatch(/user name/);
    expect(newAdminError("admin", "short", "short")).toMatch(/at least 12/);
    expect(newAdminError("admin", "long enough pw", "long enough px")).toMatch(/differ/);
  });
});

describe("idle lock", () => {
  it("reports input only while signed in, at most every 15 s", () => {
    expect(shouldTouch(100_000, 0, false)).toBe(false);
    expect(shouldTouch(100_000, 0, true)).toBe(true);
    expect(shouldTouch(100_000, 100_000 - TOUCH_EVERY_MS + 1, true)).toBe(false);
    expect(shouldTouch(100_000, 100_000 - TOUCH_EVERY_MS, true)).toBe(true);
  });
  it("notices when the core ended the session", () => {
    expect(sessionChanged(nurse, null)).toBe(true);
    expect(sessionChanged(nurse, { ...nurse })).toBe(false);
    expect(sessionChanged(null, null)).toBe(false);
    expect(sessionChanged(nurse, { ...nurse, role: "viewer" })).toBe(true);
  });
});

describe("break-glass", () => {
  it("is offered to a signed-in user without clinical access, once", () => {
    expect(offersBreakGlass(null)).toBe(false);
    expect(offersBreakGlass(nurse)).toBe(false);
    expect(offersBreakGlass(viewer)).toBe(true);
    expect(offersBreakGlass({ ...viewer, may: [...viewer.may, "acknowledge"], break_glass_s: 900 })).toBe(false);
  });
  it("is shown in the header while it lasts", () => {
    expect(headerLabel(viewer)).toBe("vic (viewer)");
    expect(headerLabel({ ...viewer, break_glass_s: 899 })).toBe("vic (viewer) \u2014 EMERGENCY ACCESS 14:59 left");
    // The screen counts down between the core's answers; never below zero.
    expect(headerLabel({ ...viewer, break_glass_s: 899 }, 61.2)).toBe("vic (viewer) \u2014 EMERGENCY ACCESS 1:02 left");
    expect(headerLabel({ ...viewer, break_glass_s: 899 }, -3)).toBe("vic (viewer) \u2014 EMERGENCY ACCESS 0:00 left");
  });
  it("needs a reason", () => {
    expect(reasonError("short")).not.toBeNull();
    expect(reasonError("patient collapsed at bed 3")).toBeNull();
  });
  it("a change of permissions (break-glass ended) is a session change", () => {
    expect(sessionChanged({ ...viewer, may: [...viewer.may, "acknowledge"], break_glass_s: 10 }, viewer)).toBe(true);
  });
});

describe("shift PIN", () => {
  it("has 4 to 8 digits", () => {
    expect(pinError("4711")).toBeNull();
    expect(pinError("12345678")).toBeNull();
    expect(pinError("123")).not.toBeNull();
    expect(pinError("123456789")).not.toBeNull();
    expect(pinError("12a4")).not.toBeNull();
  });
});
