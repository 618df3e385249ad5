// What every e2e script needs: the app binary, tauri-driver on its own ports
// (so scripts can run side by side), a webview session, steps that print
// "ok - …" with their time, and screenshots under test-output/e2e/.

import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { failAfter } from "./watchdog.mjs";
import { Builder, By, Capabilities } from "selenium-webdriver";

export const root = resolve(import.meta.dirname, "../..");
export const app = process.env.VIGIL_APP ?? join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), "debug/vigil");
export const out = join(root, "test-output/e2e");
mkdirSync(out, { recursive: true });

/**
 * Starts tauri-driver on `port` (native port `port + 1`) with `env`, stopped
 * with everything it started after `limitMs`; resolves once it answers.
 */
export async function startDriver(port, env, limitMs) {
  const driver = spawn("tauri-driver", ["--port", String(port), "--native-port", String(port + 1)], {
    env,
    stdio: ["ignore", "inherit", "inherit"],
    detached: true, // its own process group: the watchdog stops everything it started
  });
  failAfter(limitMs, driver);
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/status`)).ok) return driver;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("tauri-driver did not start");
}

/** A webview session of the app with `args`, through the driver on `port`. */
export function startSession(port, args) {
  const caps = new Capabilities();
  caps.setBrowserName("wry");
  caps.set("tauri:options", { application: app, args });
  return new Builder().withCapabilities(caps).usingServer(`http://127.0.0.1:${port}/`).build();
}

/** Runs one named check and prints it with its time. */
export async function step(name, fn) {
  const t0 = Date.now();
  await fn();
  console.log(`ok - ${name} (${Date.now() - t0} ms)`);
}

/** Text of an element by test id; "" while it is not (yet) in the page. */
export async function text(session, testid) {
  const els = await session.findElements(By.css(`[data-testid="${testid}"]`));
  if (els.length === 0) return "";
  return (await els[0].getText().catch(() => "")).trim(); // "" if re-rendered between find and read
}

/** Saves a screenshot as test-output/e2e/<name>. */
export async function shot(session, name) {
  writeFileSync(join(out, name), Buffer.from(await session.takeScreenshot(), "base64"));
}
