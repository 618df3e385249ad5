// Users for the e2e scripts (issue 14): every action needs a signed-in user.
// `addUser` runs the installer's steps on the same data directory and store key
// the app will use, before the app starts: the first admin (`vigil user add
// <name> --role admin`, no --user, password from VIGIL_USER_PASSWORD), then,
// signed in as that admin (--user, VIGIL_USER_PASSWORD), the user asked for
// (password from VIGIL_NEW_USER_PASSWORD). `signIn` goes through the real
// sign-in dialog.

import { execFileSync } from "node:child_process";
import { By, until } from "selenium-webdriver";

export const E2E_USER = "e2e-clinician";
export const E2E_PASSWORD = "e2e clinician password";
/** The installer's first admin, made by the first `addUser` on a data directory. */
export const E2E_ADMIN = "e2e-admin";
export const E2E_ADMIN_PASSWORD = "e2e admin password";

const withAdmin = new Set();

/** `vigil user add <name> --role <role> --data-dir <dataDir>` (creates the store if there is none). */
export function addUser(app, dataDir, { name = E2E_USER, role = "clinician", password = E2E_PASSWORD, env = process.env } = {}) {
  const clean = { ...env };
  delete clean.VIGIL_USER;
  delete clean.VIGIL_USER_PASSWORD;
  delete clean.VIGIL_NEW_USER_PASSWORD;
  const run = (args, extra) =>
    execFileSync(app, ["user", ...args, "--data-dir", dataDir], {
      env: { ...clean, ...extra },
      stdio: ["ignore", "inherit", "inherit"],
    });
  if (!withAdmin.has(dataDir)) {
    run(["add", E2E_ADMIN, "--role", "admin"], { VIGIL_USER_PASSWORD: E2E_ADMIN_PASSWORD });
    withAdmin.add(dataDir);
  }
  if (name === E2E_ADMIN) return;
  run(["add", name, "--role", role], {
    VIGIL_USER: E2E_ADMIN,
    VIGIL_USER_PASSWORD: E2E_ADMIN_PASSWORD,
    VIGIL_NEW_USER_PASSWORD: password,
  });
}

/** Signs in through the header's "Sign in" button and the dialog; waits for "name (role)" in the header. */
export async function signIn(session, { name = E2E_USER, role = "clinician", password = E2E_PASSWORD } = {}) {
  const open = await session.wait(until.elementLocated(By.css('[data-testid="sign-in-open"]')), 20000);
  await session.wait(until.elementIsVisible(open), 20000);
  await open.click();
  await fillSignIn(session, name, password);
  await session.wait(
    async () => {
      const els = await session.findElements(By.css('[data-testid="user-signed"]'));
      return els.length > 0 && (await els[0].getText().catch(() => "")).trim() === `${name} (${role})`;
    },
    10000,
    "the signed-in user is not shown in the header",
  );
}

/** Fills the open sign-in dialog and submits it. */
export async function fillSignIn(session, name, password) {
  const nameInput = await session.wait(until.elementLocated(By.css('[data-testid="signin-name"]')), 5000);
  await nameInput.sendKeys(name);
  await session.findElement(By.css('[data-testid="signin-password"]')).sendKeys(password);
  await session.findElement(By.css('[data-testid="signin-submit"]')).click();
  await session.wait(async () => (await session.findElements(By.css('[data-testid="signin"]'))).length === 0, 10000, "the sign-in dialog stays open");
}
