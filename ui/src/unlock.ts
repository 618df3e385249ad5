// The unlock screen: shown when the core has no key for the encrypted store
// (no OS keychain entry, no VIGIL_PASSPHRASE, no key file). Vigil never runs
// unencrypted, so nothing else is shown until the store is open.

import type { AppInfo } from "./contract";
import { commandErrorText, toCommandError } from "./validate";

export function showUnlock(unlock: (passphrase: string) => Promise<AppInfo>): Promise<AppInfo> {
  return new Promise((resolve) => {
    const overlay = document.createElement("div");
    overlay.className = "unlock-overlay";
    overlay.dataset.testid = "unlock";
    overlay.innerHTML = `
      <form class="unlock-form" autocomplete="off">
        <h1>Vigil is locked</h1>
        <p>Readings are stored encrypted. Enter the store passphrase for this workstation.
           On first use, the passphrase you choose here protects the new store: keep it safe.</p>
        <label>Passphrase <input type="password" data-testid="unlock-passphrase" autocomplete="current-password" /></label>
        <p class="unlock-error" data-testid="unlock-error" role="alert"></p>
        <button type="submit" data-testid="unlock-submit">Unlock</button>
      </form>`;
    const form = overlay.querySelector("form")!;
    const input = overlay.querySelector("input")!;
    const error = overlay.querySelector<HTMLElement>(".unlock-error")!;
    const button = overlay.querySelector("button")!;
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      button.disabled = true;
      error.textContent = "Unlocking\u2026";
      try {
        const info = await unlock(input.value);
        input.value = "";
        overlay.remove();
        resolve(info);
      } catch (err) {
        error.textContent = commandErrorText(toCommandError(err));
        button.disabled = false;
        input.select();
      }
    });
    document.body.append(overlay);
    input.focus();
  });
}
