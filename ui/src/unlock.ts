// The unlock screen: shown when the core has no key for the encrypted store
// (no VIGIL_PASSPHRASE, no key file, no keychain key made for this store).
// Vigil never runs unencrypted, so nothing else is shown until the store is open.
//
// At first start (no store yet) it is the choice of where the key lives
// (issue 13 §2): a passphrase, typed twice and at least 12 characters, or the
// OS keychain of this user — never chosen silently. The site configuration can
// fix the choice; then only that one is offered.

import type { AppInfo, KeySetup } from "./contract";
import { commandErrorText, toCommandError } from "./validate";

export interface UnlockApi {
  unlock(passphrase: string, confirm: string | null): Promise<AppInfo>;
  keySetup(): Promise<KeySetup>;
  unlockWithKeychain(): Promise<AppInfo>;
}

/** The screen's texts for a key setup: [heading, explanation, submit label]. */
export function unlockTexts(setup: KeySetup | null): [string, string, string] {
  if (setup?.first_start) {
    return [
      "Create the encrypted store",
      `Readings are stored encrypted. Choose the passphrase that protects this workstation's store (at least ${setup.min_passphrase} characters) and type it twice. Keep it safe: without it the readings cannot be read.`,
      "Create store",
    ];
  }
  return ["Vigil is locked", "Readings are stored encrypted. Enter the store passphrase for this workstation.", "Unlock"];
}

/** A first-start check in the screen (the core checks again): an error text or null. */
export function newPassphraseError(passphrase: string, confirm: string, min: number): string | null {
  if ([...passphrase].length < min) return `The passphrase must have at least ${min} characters.`;
  if (passphrase !== confirm) return "The two passphrases differ: type the same one twice.";
  return null;
}

export function showUnlock(api: UnlockApi): Promise<AppInfo> {
  return new Promise((resolve) => {
    void api
      .keySetup()
      .catch(() => null)
      .then((setup) => render(setup));

    function render(setup: KeySetup | null): void {
      const first = !!setup?.first_start;
      const fixedElsewhere = setup?.fixed && setup.fixed !== "passphrase";
      const keychainOffered = first && !!setup?.keychain_available && !setup?.fixed;
      const [title, text, submit] = unlockTexts(setup);
      const overlay = document.createElement("div");
      overlay.className = "unlock-overlay";
      overlay.dataset.testid = "unlock";
      overlay.innerHTML = `
        <form class="unlock-form" autocomplete="off">
          <h1></h1>
          <p class="unlock-text"></p>
          <label>Passphrase <input type="password" data-testid="unlock-passphrase" autocomplete="${first ? "new-password" : "current-password"}" /></label>
          <label class="unlock-confirm-row">Passphrase again <input type="password" data-testid="unlock-confirm" autocomplete="new-password" /></label>
          <p class="unlock-error" data-testid="unlock-error" role="alert"></p>
          <button type="submit" data-testid="unlock-submit"></button>
          <div class="unlock-keychain" data-testid="unlock-keychain-choice">
            <p>Or keep the key in this user's OS keychain: Vigil then opens without a passphrase for anyone who can use this account.</p>
            <button type="button" data-testid="unlock-keychain">Use the OS keychain</button>
          </div>
        </form>`;
      overlay.querySelector("h1")!.textContent = title;
      overlay.querySelector(".unlock-text")!.textContent = fixedElsewhere
        ? "The site configuration keeps this store's key in a key file or the OS keychain, which cannot be used here. Ask IT: no passphrase opens it."
        : text;
      const form = overlay.querySelector("form")!;
      const input = overlay.querySelector<HTMLInputElement>('[data-testid="unlock-passphrase"]')!;
      const confirm = overlay.querySelector<HTMLInputElement>('[data-testid="unlock-confirm"]')!;
      const error = overlay.querySelector<HTMLElement>(".unlock-error")!;
      const button = overlay.querySelector<HTMLButtonElement>('[data-testid="unlock-submit"]')!;
      const keychain = overlay.querySelector<HTMLButtonElement>('[data-testid="unlock-keychain"]')!;
      button.textContent = submit;
      overlay.querySelector<HTMLElement>(".unlock-confirm-row")!.hidden = !first;
      overlay.querySelector<HTMLElement>(".unlock-keychain")!.hidden = !keychainOffered;
      const done = (info: AppInfo) => {
        input.value = "";
        confirm.value = "";
        overlay.remove();
        resolve(info);
      };
      const failed = (err: unknown) => {
        error.textContent = commandErrorText(toCommandError(err));
        button.disabled = false;
        keychain.disabled = false;
        input.select();
      };
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        if (first && setup) {
          const why = newPassphraseError(input.value, confirm.value, setup.min_passphrase);
          if (why) {
            error.textContent = why;
            return;
          }
        }
        button.disabled = true;
        error.textContent = first ? "Creating the store\u2026" : "Unlocking\u2026";
        try {
          done(await api.unlock(input.value, first ? confirm.value : null));
        } catch (err) {
          failed(err);
        }
      });
      keychain.addEventListener("click", async () => {
        keychain.disabled = true;
        button.disabled = true;
        error.textContent = "Creating the store\u2026";
        try {
          done(await api.unlockWithKeychain());
        } catch (err) {
          failed(err);
        }
      });
      document.body.append(overlay);
      input.focus();
    }
  });
}
