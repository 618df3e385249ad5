import { describe, expect, it } from "vitest";
import { newPassphraseError, unlockTexts } from "./unlock";

describe("unlock screen", () => {
  const first = { first_start: true, keychain_available: false, fixed: null, min_passphrase: 12 };

  it("at first start asks to create the store, with the minimum length stated", () => {
    const [title, text, submit] = unlockTexts(first);
    expect(title).toBe("Create the encrypted store");
    expect(text).toContain("at least 12 characters");
    expect(submit).toBe("Create store");
    expect(unlockTexts({ ...first, first_start: false })[0]).toBe("Vigil is locked");
    expect(unlockTexts(null)[0]).toBe("Vigil is locked");
  });

  it("refuses a short new passphrase and two that differ", () => {
    expect(newPassphraseError("elevenchars", "elevenchars", 12)).toMatch(/at least 12/);
    expect(newPassphraseError("twelve-chars", "twelve-charz", 12)).toMatch(/differ/);
    expect(newPassphraseError("twelve-chars", "twelve-chars", 12)).toBeNull();
    // Characters, not UTF-16 units: 12 emoji are 12 characters.
    expect(newPassphraseError("\u{1F511}".repeat(12), "\u{1F511}".repeat(12), 12)).toBeNull();
  });
});
