// Who is acting (issue 14): the sign-in dialog, the first admin at first start,
// and the pure rules the screen uses to show what the signed-in user may do.
// The core checks every action itself; this only hides what would be refused.
//
// A signed-out workstation keeps monitoring and alarming: this dialog never
// blocks the numerics or the alarm sound behind it for longer than it is open.

import type { Action, SessionState, SessionView } from "./contract";
import { commandErrorText, toCommandError } from "./validate";

export interface SignInApi {
  signIn(name: string, password: string): Promise<SessionView>;
  createFirstAdmin(name: string, password: string, confirm: string): Promise<SessionView>;
}

/** Shortest password for a new user (the core checks again). */
export const PASSWORD_MIN = 12;

/** Whether the signed-in user (null: nobody) may do `action`. Monitoring needs no one. */
export function may(session: SessionView | null, action: Action): boolean {
  if (action === "monitor") return true;
  return !!session && session.may.includes(action);
}

/** The header's text for the signed-in user: "ann (nurse)", or null when signed out. */
export function sessionLabel(session: SessionView | null): string | null {
  return session ? `${session.user} (${session.role})` : null;
}

/** The dialog's texts: [heading, explanation, submit label]. */
export function signInTexts(state: Pick<SessionState, "has_users" | "users_lost">, reason: string | null): [string, string, string] {
  if (state.users_lost) {
    // Never the first-admin form here: whoever stands at the workstation would get it.
    return [
      "No one can sign in",
      "The sign-in accounts were in the damaged store that was moved aside. An installer restores them (vigil store salvage <file>) or creates an administrator (vigil user add <name> --role admin). Monitoring and alarms go on meanwhile.",
      "",
    ];
  }
  if (!state.has_users) {
    return [
      "Create the first administrator",
      `No one can sign in yet. Create the administrator account for this workstation (password at least ${PASSWORD_MIN} characters, typed twice); the administrator then adds nurses and clinicians with \`vigil user add\`. Monitoring and alarms go on meanwhile.`,
      "Create administrator",
    ];
  }
  return ["Sign in", reason ?? "Sign in to act or to see patient details. Monitoring and alarms go on while no one is signed in.", "Sign in"];
}

/** A check in the screen before the first admin is created: an error text or null. */
export function newAdminError(name: string, password: string, confirm: string): string | null {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) return "A user name has 1 to 64 letters, digits, '.', '_' or '-'.";
  if ([...password].length < PASSWORD_MIN) return `The password must have at least ${PASSWORD_MIN} characters.`;
  if (password !== confirm) return "The two passwords differ: type the same one twice.";
  return null;
}

/** Body attributes the stylesheet hides actions by: `data-session` and `data-may`. */
export function sessionAttributes(session: SessionView | null): { session: string; may: string } {
  return { session: session ? "in" : "out", may: session ? session.may.join(" ") : "" };
}

/**
 * Shows the sign-in dialog (or the first-admin form); resolves with the new
 * session, or null when the user closes it (Cancel or Escape).
 */
export function showSignIn(api: SignInApi, state: Pick<SessionState, "has_users" | "users_lost">, reason: string | null = null): Promise<SessionView | null> {
  document.querySelector('[data-testid="signin"]')?.remove();
  return new Promise((resolve) => {
    const first = !state.has_users && !state.users_lost;
    const [title, text, submit] = signInTexts(state, reason);
    const overlay = document.createElement("div");
    overlay.className = "unlock-overlay signin-overlay";
    overlay.dataset.testid = "signin";
    overlay.innerHTML = `
      <form class="unlock-form" autocomplete="off">
        <h1></h1>
        <p class="unlock-text"></p>
        <label>User name <input type="text" data-testid="signin-name" autocomplete="username" spellcheck="false" maxlength="64" /></label>
        <label><span class="signin-password-label">Password</span> <input type="password" data-testid="signin-password" autocomplete="${first ? "new-password" : "current-password"}" /></label>
        <label class="signin-confirm-row">Password again <input type="password" data-testid="signin-confirm" autocomplete="new-password" /></label>
        <p class="unlock-error" data-testid="signin-error" role="alert"></p>
        <button type="submit" data-testid="signin-submit"></button>
        <button type="button" data-testid="signin-cancel">Cancel</button>
      </form>`;
    overlay.querySelector("h1")!.textContent = title;
    overlay.querySelector(".unlock-text")!.textContent = text;
    const form = overlay.querySelector("form")!;
    const name = overlay.querySelector<HTMLInputElement>('[data-testid="signin-name"]')!;
    const password = overlay.querySelector<HTMLInputElement>('[data-testid="signin-password"]')!;
    const confirm = overlay.querySelector<HTMLInputElement>('[data-testid="signin-confirm"]')!;
    const error = overlay.querySelector<HTMLElement>(".unlock-error")!;
    const button = overlay.querySelector<HTMLButtonElement>('[data-testid="signin-submit"]')!;
    button.textContent = submit;
    overlay.querySelector<HTMLElement>(".signin-confirm-row")!.hidden = !first;
    if (!first) overlay.querySelector(".signin-password-label")!.textContent = "Password (or your shift PIN)";
    if (state.users_lost) {
      for (const el of overlay.querySelectorAll<HTMLElement>("label, [data-testid='signin-submit']")) el.hidden = true;
      overlay.querySelector('[data-testid="signin-cancel"]')!.textContent = "Close";
    }
    const close = (s: SessionView | null) => {
      password.value = "";
      confirm.value = "";
      overlay.remove();
      document.removeEventListener("keydown", onKey, true);
      resolve(s);
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        e.stopPropagation();
        close(null);
      }
    };
    document.addEventListener("keydown", onKey, true);
    overlay.querySelector('[data-testid="signin-cancel"]')!.addEventListener("click", () => close(null));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (first) {
        const why = newAdminError(name.value.trim(), password.value, confirm.value);
        if (why) {
          error.textContent = why;
          return;
        }
      }
      button.disabled = true;
      error.textContent = first ? "Creating the administrator\u2026" : "Signing in\u2026";
      try {
        close(first ? await api.createFirstAdmin(name.value.trim(), password.value, confirm.value) : await api.signIn(name.value.trim(), password.value));
      } catch (err) {
        error.textContent = commandErrorText(toCommandError(err));
        button.disabled = false;
        password.value = "";
        password.focus();
      }
    });
    document.body.append(overlay);
    if (state.users_lost) overlay.querySelector<HTMLElement>('[data-testid="signin-cancel"]')!.focus();
    else name.focus();
  });
}

/**
 * How often input at the workstation is reported to the core (the idle lock's
 * activity): well inside the shortest idle lock (30 s, site.rs IDLE_LOCK_MIN).
 */
export const TOUCH_EVERY_MS = 5_000;

/** Whether input now should be reported: only while signed in, at most every TOUCH_EVERY_MS. */
export function shouldTouch(now: number, lastTouch: number, signedIn: boolean): boolean {
  return signedIn && now - lastTouch >= TOUCH_EVERY_MS;
}

/** Whether the core's session differs from the one the screen shows (idle lock, sign-out elsewhere). */
export function sessionChanged(shown: SessionView | null, core: SessionView | null): boolean {
  return (
    (shown?.user ?? null) !== (core?.user ?? null) ||
    (shown?.role ?? null) !== (core?.role ?? null) ||
    (shown?.may ?? []).join(" ") !== (core?.may ?? []).join(" ") ||
    (shown?.break_glass_s == null) !== (core?.break_glass_s == null)
  );
}

/** Whether the header offers break-glass: signed in, without clinical access, not already under it. */
export function offersBreakGlass(session: SessionView | null): boolean {
  return !!session && session.break_glass_s == null && !session.may.includes("acknowledge");
}

/**
 * The header's text for the signed-in user, marked while under break-glass with
 * the time left (`leftS`, counted down by the screen from the core's
 * `break_glass_s`; the core ends the access itself).
 */
export function headerLabel(session: SessionView | null, leftS: number | null = session?.break_glass_s ?? null): string | null {
  const label = sessionLabel(session);
  if (!label || !session || session.break_glass_s == null) return label;
  const s = Math.max(0, Math.ceil(leftS ?? 0));
  const mmss = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  return `${label} \u2014 EMERGENCY ACCESS ${mmss} left`;
}

/** Reason for break-glass: an error text or null (the core checks again). */
export function reasonError(reason: string): string | null {
  const n = [...reason.trim()].length;
  return n >= 10 && n <= 500 ? null : "Give the reason for emergency access (10 to 500 characters).";
}

/** Asks for the reason and takes break-glass access; the new session, or null when cancelled. */
export function showBreakGlass(breakGlass: (reason: string) => Promise<SessionView>): Promise<SessionView | null> {
  return new Promise((resolve) => {
    const overlay = document.createElement("div");
    overlay.className = "unlock-overlay signin-overlay";
    overlay.dataset.testid = "break-glass";
    overlay.innerHTML = `
      <form class="unlock-form" autocomplete="off">
        <h1>Emergency access</h1>
        <p class="unlock-text">For 15 minutes you get a clinician's access (patient details, acknowledge, limits, trends). Every action is flagged for review.</p>
        <label>Reason <input type="text" data-testid="break-glass-reason" maxlength="500" /></label>
        <p class="unlock-error" data-testid="break-glass-error" role="alert"></p>
        <button type="submit" data-testid="break-glass-submit">Take emergency access</button>
        <button type="button" data-testid="break-glass-cancel">Cancel</button>
      </form>`;
    const reason = overlay.querySelector<HTMLInputElement>('[data-testid="break-glass-reason"]')!;
    const error = overlay.querySelector<HTMLElement>(".unlock-error")!;
    const close = (s: SessionView | null) => {
      overlay.remove();
      resolve(s);
    };
    overlay.querySelector('[data-testid="break-glass-cancel"]')!.addEventListener("click", () => close(null));
    overlay.querySelector("form")!.addEventListener("submit", async (e) => {
      e.preventDefault();
      const why = reasonError(reason.value);
      if (why) {
        error.textContent = why;
        return;
      }
      try {
        close(await breakGlass(reason.value.trim()));
      } catch (err) {
        error.textContent = commandErrorText(toCommandError(err));
      }
    });
    document.body.append(overlay);
    reason.focus();
  });
}

/** A shift PIN: 4 to 8 digits (a password has at least 12 characters, so they never mix). */
export function pinError(pin: string): string | null {
  return /^[0-9]{4,8}$/.test(pin) ? null : "A shift PIN has 4 to 8 digits.";
}

/** Asks for a shift PIN (twice) and sets it; true when set. */
export function showSetPin(setPin: (pin: string) => Promise<void>): Promise<boolean> {
  return new Promise((resolve) => {
    const overlay = document.createElement("div");
    overlay.className = "unlock-overlay signin-overlay";
    overlay.dataset.testid = "set-pin";
    overlay.innerHTML = `
      <form class="unlock-form" autocomplete="off">
        <h1>Shift PIN</h1>
        <p class="unlock-text">For the rest of this shift (12 h) you can sign in at this workstation with your name and this PIN. Three wrong PINs and the password is needed again.</p>
        <label>PIN (4 to 8 digits) <input type="password" inputmode="numeric" data-testid="set-pin-pin" maxlength="8" /></label>
        <label>PIN again <input type="password" inputmode="numeric" data-testid="set-pin-confirm" maxlength="8" /></label>
        <p class="unlock-error" data-testid="set-pin-error" role="alert"></p>
        <button type="submit" data-testid="set-pin-submit">Set PIN</button>
        <button type="button" data-testid="set-pin-cancel">Cancel</button>
      </form>`;
    const pin = overlay.querySelector<HTMLInputElement>('[data-testid="set-pin-pin"]')!;
    const again = overlay.querySelector<HTMLInputElement>('[data-testid="set-pin-confirm"]')!;
    const error = overlay.querySelector<HTMLElement>(".unlock-error")!;
    const close = (ok: boolean) => {
      pin.value = "";
      again.value = "";
      overlay.remove();
      resolve(ok);
    };
    overlay.querySelector('[data-testid="set-pin-cancel"]')!.addEventListener("click", () => close(false));
    overlay.querySelector("form")!.addEventListener("submit", async (e) => {
      e.preventDefault();
      const why = pinError(pin.value) ?? (pin.value === again.value ? null : "The two PINs differ.");
      if (why) {
        error.textContent = why;
        return;
      }
      try {
        await setPin(pin.value);
        close(true);
      } catch (err) {
        error.textContent = commandErrorText(toCommandError(err));
      }
    });
    document.body.append(overlay);
    pin.focus();
  });
}
