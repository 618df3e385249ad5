// A hung driver or webview fails an e2e run instead of hanging CI.

/**
 * After `ms`, prints a failure and kills `driver`'s whole process group
 * (tauri-driver, WebKitWebDriver and the app: an orphaned WebKitWebDriver
 * would hold CI's output pipe open), then exits 1. `driver` must have been
 * spawned with `detached: true` (its own process group).
 */
export function failAfter(ms, driver) {
  setTimeout(() => {
    console.error(`not ok - did not finish within ${ms / 1000} s`);
    try {
      process.kill(-driver.pid, "SIGKILL");
    } catch {}
    process.exit(1);
  }, ms).unref();
}
