// End-to-end: the nurse's Bluetooth pairing flow in the real Vigil binary
// (WebKitGTK under Xvfb, tauri-driver + WebKitWebDriver), with the app's
// btleplug talking to the fake BlueZ (tests/ble/fake_bluez.py) on a private
// D-Bus *system* bus. No radio, no real bluetoothd.
//
// Scan lists two straps with the same name, nearest first; the near one is
// assigned to bed 1 as a heart-rate strap; heart rates sent by the fake show
// live at bed 1, the chip says receiving and the device table the strap's
// Device Information; out of range raises a technical (INOP) alarm at bed 1,
// back in range clears it. Screenshots: test-output/e2e/ble-paired.png, ble-alarm.png.
//
//   VIGIL_APP=/path/to/vigil xvfb-run -a -s "-screen 0 1280x800x24" node tests/e2e/ble.mjs

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdirSync, mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import assert from "node:assert/strict";
import { addUser, signIn } from "./users.mjs";
import { Builder, By, Capabilities, until } from "selenium-webdriver";

const root = resolve(import.meta.dirname, "../..");
const app = process.env.VIGIL_APP ?? join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), "debug/vigil");
const out = join(root, "test-output/e2e");
mkdirSync(out, { recursive: true });
const dataDir = mkdtempSync(join(tmpdir(), "vigil-e2e-ble-"));
const busDir = mkdtempSync(join(tmpdir(), "vigil-e2e-ble-bus-"));

// Not run.mjs's 4444 (whose WebKitWebDriver takes tauri-driver's default
// native port 4445): the two can run side by side.
const driverPort = 4446;
const nativePort = 4447;
const NEAR = "AA:BB:CC:DD:EE:01";
const FAR = "AA:BB:CC:DD:EE:02";
const NEAR_ID = `ble-${NEAR}`;
const DIS = { manufacturer: "Polar Electro Oy", model: "H10", serial: "C0680226", firmware: "5.0.0" };

const t0 = Date.now();
let bus, fake, driver, session;
let failed = false;

// Never leave a daemon behind: the children run in process groups of their
// own, so a signal to this process does not reach them; kill them here.
function killAll() {
  for (const c of [driver, fake, bus]) {
    try {
      if (c && c.exitCode === null && c.signalCode === null) process.kill(-c.pid, "SIGKILL");
    } catch {}
  }
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(busDir, { recursive: true, force: true });
}
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    console.error(`not ok - ${sig}`);
    killAll();
    process.exit(1);
  });
}
const LIMIT_MS = 180000;
const watchdog = setTimeout(() => {
  console.error(`not ok - did not finish within ${LIMIT_MS / 1000} s`);
  killAll();
  process.exit(1);
}, LIMIT_MS);
watchdog.unref();

// ------------------------------------------------------------ processes

/** A child in its own process group, so that killing it takes its children too. */
function start(cmd, args, opts) {
  const child = spawn(cmd, args, { detached: true, ...opts });
  child.on("error", (e) => console.error(`${cmd}: ${e.message}`));
  return child;
}

function stop(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
      res();
    }, 3000);
    child.once("exit", () => {
      clearTimeout(timer);
      res();
    });
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      clearTimeout(timer);
      res();
    }
  });
}

/** The first line a child prints on stdout (rejects if it exits first or after `ms`). */
function firstLine(child, what, ms = 15000) {
  return new Promise((res, rej) => {
    let buf = "";
    const timer = setTimeout(() => rej(new Error(`${what}: no output within ${ms} ms`)), ms);
    const onData = (d) => {
      buf += d;
      const i = buf.indexOf("\n");
      if (i >= 0) {
        clearTimeout(timer);
        child.stdout.off("data", onData);
        res(buf.slice(0, i).trim());
      }
    };
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      rej(new Error(`${what} exited (${code}) before it was ready`));
    });
  });
}

/** A private dbus-daemon of type "system" (as the Rust BLE tests' harness.rs). */
async function startBus() {
  const socket = join(busDir, "bus");
  const conf = join(busDir, "bus.conf");
  writeFileSync(
    conf,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
`,
  );
  bus = start("dbus-daemon", [`--config-file=${conf}`, "--nofork", "--print-address"], { stdio: ["ignore", "pipe", "ignore"] });
  await firstLine(bus, "dbus-daemon"); // printed once the socket listens
  return `unix:path=${socket}`; // no guid= part
}

/** The fake BlueZ, one JSON command per line, one JSON reply per line, in order. */
async function startFake(env) {
  const python = process.env.VIGIL_PYTHON ?? "python3";
  fake = start(python, [join(root, "tests/ble/fake_bluez.py")], { env, stdio: ["pipe", "pipe", "inherit"] });
  const ready = await firstLine(fake, "fake_bluez");
  assert.equal(ready, "READY", `fake_bluez said ${ready}`);
  const lines = createInterface({ input: fake.stdout });
  const waiting = [];
  lines.on("line", (l) => waiting.shift()?.(l));
  fake.once("exit", () => {
    for (const w of waiting.splice(0)) w(JSON.stringify({ ok: false, error: "fake_bluez exited" }));
  });
  let chain = Promise.resolve();
  fake.cmd = (cmd) => {
    const p = chain.then(
      () =>
        new Promise((res, rej) => {
          waiting.push((l) => {
            const r = JSON.parse(l);
            if (r.ok) res(r);
            else rej(new Error(`fake_bluez ${cmd.cmd}: ${r.error}`));
          });
          fake.stdin.write(JSON.stringify(cmd) + "\n");
        }),
    );
    chain = p.catch(() => {});
    return p;
  };
}

async function waitForDriver() {
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${driverPort}/status`);
      if (r.ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("tauri-driver did not start");
}

// ------------------------------------------------------------ page helpers

async function text(testid) {
  const els = await session.findElements(By.css(`[data-testid="${testid}"]`));
  if (els.length === 0) return "";
  try {
    return (await els[0].getText()).trim();
  } catch {
    return "";
  }
}

async function click(testid) {
  await session.findElement(By.css(`[data-testid="${testid}"]`)).click();
}

async function isShown(testid) {
  const els = await session.findElements(By.css(`[data-testid="${testid}"]`));
  return els.length > 0 && (await els[0].isDisplayed().catch(() => false));
}

/** Technical alarms shown at a bed: [{testid, priority, inop, message}]. */
async function technicalAlarms(bed) {
  return session.executeScript(
    (b) =>
      [...document.querySelectorAll(`[data-testid^="alarm-${b}-"][data-kind="technical"]`)].map((el) => ({
        testid: el.getAttribute("data-testid"),
        priority: el.getAttribute("data-priority"),
        inop: !el.querySelector(".alarm-inop")?.hidden,
        message: el.querySelector(".alarm-msg")?.textContent ?? "",
      })),
    bed,
  );
}

async function shot(name) {
  const png = await session.takeScreenshot();
  const path = join(out, name);
  writeFileSync(path, Buffer.from(png, "base64"));
  console.log(`screenshot: ${path}`);
}

async function step(name, fn) {
  const t = Date.now();
  await fn();
  console.log(`ok - ${name} (${Date.now() - t} ms)`);
}

/** A heart-rate measurement (0x2A37): flags 0x00 (uint8 bpm, no contact/energy/RR), the bpm. */
const hr = (bpm) => "00" + bpm.toString(16).padStart(2, "0");

async function sendHr(bpm) {
  // Waits (up to 30 s) until the app has subscribed to 0x2A37.
  await fake.cmd({ cmd: "notify", address: NEAR, char: "2a37", hex: hr(bpm), timeout: 30 });
}

// A real strap notifies once a second; one that falls silent for longer than
// its stale limit (6 s) rightly raises a "no data" technical alarm. Steps that
// expect a quiet alarm bar keep the strap beating, however slow the machine.
let beat = null;
function keepBeating(bpm) {
  stopBeating();
  beat = setInterval(() => {
    fake.cmd({ cmd: "notify", address: NEAR, char: "2a37", hex: hr(bpm), timeout: 2 }).catch(() => {});
  }, 1000);
}
function stopBeating() {
  clearInterval(beat);
  beat = null;
}

// ------------------------------------------------------------ the test

try {
  const address = await startBus();
  const env = { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: address, VIGIL_PASSPHRASE: "e2e-ble-passphrase" };
  // The installer's step: a nurse to sign in with (same data directory and store key).
  addUser(app, dataDir, { name: "e2e-nurse", role: "nurse", password: "e2e nurse password", env });
  await startFake(env);
  const strap = (addr, rssi) => ({
    cmd: "add_device",
    address: addr,
    name: "Polar H10",
    rssi,
    services: ["180d", "180f", "180a"],
    battery: 87,
    dis: DIS,
  });
  await fake.cmd(strap(NEAR, -50));
  await fake.cmd(strap(FAR, -88)); // same name, far away

  driver = start("tauri-driver", ["--port", String(driverPort), "--native-port", String(nativePort)], { env, stdio: ["ignore", "inherit", "inherit"] });
  await waitForDriver();
  const caps = new Capabilities();
  caps.setBrowserName("wry");
  caps.set("tauri:options", { application: app, args: ["--data-dir", dataDir] });
  session = await new Builder().withCapabilities(caps).usingServer(`http://127.0.0.1:${driverPort}/`).build();

  await step("the app runs real devices: no SIMULATED banner, 4 empty beds", async () => {
    await session.wait(async () => (await text("patient-bed-4")) === "Empty bed", 30000, "beds not shown");
    const keySource = () => session.executeScript(() => document.querySelector('[data-testid="key-source"]')?.textContent ?? "");
    await session.wait(async () => /^key: /.test(await keySource()), 20000, "app info not shown in the header");
    // The app info reached the header: the banner is hidden only in real mode.
    assert.equal(await isShown("sim-banner"), false, "SIMULATED / mode-unknown banner shown");
    const info = await session.executeAsyncScript((done) => {
      window.__TAURI_INTERNALS__.invoke("app_info").then(done, (e) => done({ error: String(e) }));
    });
    assert.equal(info.mode, "real", `app_info: ${JSON.stringify(info)}`);
    for (const b of [1, 2, 3, 4]) assert.equal(await text(`patient-bed-${b}`), "Empty bed", `bed ${b}`);
    const chips = await session.findElements(By.css('[data-testid^="device-bed-"]'));
    assert.equal(chips.length, 0, "devices on a fresh ward");
    console.log(`   header: ${await keySource()}, mode ${info.mode}`);
  });

  await step("the nurse signs in", async () => {
    await signIn(session, { name: "e2e-nurse", role: "nurse", password: "e2e nurse password" });
  });

  await step("bed 1's single-bed view opens", async () => {
    await session.findElement(By.css('[data-testid="bed-tile-bed-1"] .bed-label')).click();
    await session.wait(until.elementLocated(By.css('[data-testid="devices-bed-1"]')), 5000);
  });

  await step("scan lists both straps, nearest first", async () => {
    await click("add-device-bed-1");
    await session.wait(until.elementLocated(By.css('[data-testid="scan"]')), 5000);
    await click("scan");
    await session.wait(
      async () =>
        (await text("add-device-error")) !== "" || (await session.findElements(By.css('[data-testid^="scan-result-"]'))).length >= 2,
      20000,
      "scan found fewer than 2 devices",
    );
    assert.equal(await text("add-device-error"), "", "scan error");
    const rows = await session.findElements(By.css('[data-testid^="scan-result-"]'));
    const ids = await Promise.all(rows.map((r) => r.getAttribute("data-testid")));
    assert.deepEqual(ids, [`scan-result-${NEAR}`, `scan-result-${FAR}`], "order");
    const near = await text(`scan-result-${NEAR}`);
    assert.match(near, /Polar H10/);
    assert.match(near, /heart rate/);
    assert.match(await text(`scan-result-${FAR}`), /Polar H10/);
    // Issue 13 §1: the list says each device's link security (these straps are not bonded).
    assert.match(near, /not bonded/);
    console.log(`   ${await text("scan-status")}`);
  });

  await step("the near strap, chosen, shows its serial number; assigned to bed 1 as a heart-rate strap", async () => {
    await session.findElement(By.css(`[data-testid="scan-result-${NEAR}"] input[type=radio]`)).click();
    await session.wait(async () => (await session.findElement(By.css('[data-testid="assign"]')).isEnabled()), 5000);
    // Issue 13 §1: choosing it reads its Device Information: the serial on its label.
    await session.wait(async () => (await text(`scan-identity-${NEAR}`)).startsWith(`serial ${DIS.serial}`), 20000, `no serial: ${await text(`scan-identity-${NEAR}`)}`);
    console.log(`   ${await text(`scan-identity-${NEAR}`)}`);
    await shot("ble-add-device-serial.png");
    await session.findElement(By.css('[data-testid="assign-kind"] option[value="heart_rate_strap"]')).click();
    await click("assign");
    await session.wait(async () => !(await isShown("add-device-dialog")), 15000, `dialog still open: ${await text("add-device-error")}`);
    await session.wait(until.elementLocated(By.css(`[data-testid="device-row-bed-1-${NEAR_ID}"]`)), 10000, "no device row");
  });

  await step("heart rates from the strap show live at bed 1; the chip says receiving", async () => {
    for (const bpm of [72, 73, 74]) await sendHr(bpm);
    keepBeating(74);
    await session.wait(async () => (await text("hr-bed-1")) === "74", 15000, `HR at bed 1: ${await text("hr-bed-1")}`);
    await session.wait(async () => (await text(`device-row-state-bed-1-${NEAR_ID}`)) === "receiving", 10000, "device not receiving");
  });

  await step("the device table shows the strap's manufacturer and model", async () => {
    await session.wait(async () => /Polar Electro Oy H10/.test(await text(`device-info-bed-1-${NEAR_ID}`)), 10000, "no DIS info");
    console.log(`   ${await text(`device-info-bed-1-${NEAR_ID}`)}`);
    // An unbonded link is taken (no site policy) but labelled, never silently trusted.
    await session.wait(async () => (await text(`device-row-trust-bed-1-${NEAR_ID}`)) === "not bonded", 10000, "no link-security label");
    const alarms = await technicalAlarms("bed-1");
    assert.equal(alarms.length, 0, `a technical alarm while receiving: ${alarms.map((a) => a.message).join(", ")}`);
  });
  await shot("ble-paired.png");

  await step("the overview chip says receiving", async () => {
    await click("back");
    await session.wait(async () => (await text(`device-state-bed-1-${NEAR_ID}`)) === "receiving", 10000, "chip not receiving");
    assert.equal(await text("hr-bed-1"), "74");
    await session.findElement(By.css('[data-testid="bed-tile-bed-1"] .bed-label')).click();
    await session.wait(until.elementLocated(By.css('[data-testid="devices-bed-1"]')), 5000);
  });

  await step("out of range: a technical (INOP) alarm at bed 1 within 10 s", async () => {
    stopBeating();
    const lost = Date.now();
    await fake.cmd({ cmd: "set_in_range", address: NEAR, in_range: false });
    let alarms = [];
    await session.wait(
      async () => (alarms = await technicalAlarms("bed-1")).length > 0,
      10000,
      "no technical alarm at bed 1",
    );
    assert.ok(alarms[0].inop, "INOP tag not shown");
    console.log(`   after ${Date.now() - lost} ms: ${alarms.map((a) => `${a.priority} "${a.message}"`).join(", ")}; device ${await text(`device-row-state-bed-1-${NEAR_ID}`)}`);
  });
  await shot("ble-alarm.png");

  await step("back in range with a reading: the alarm clears", async () => {
    await fake.cmd({ cmd: "set_in_range", address: NEAR, in_range: true });
    await sendHr(75);
    keepBeating(75);
    await session.wait(async () => (await text("hr-bed-1")) === "75", 20000, `HR at bed 1: ${await text("hr-bed-1")}`);
    await session.wait(async () => (await technicalAlarms("bed-1")).length === 0, 15000, "technical alarm not cleared");
    await session.wait(async () => (await text(`device-row-state-bed-1-${NEAR_ID}`)) === "receiving", 10000, "device not receiving");
  });
} catch (e) {
  failed = true;
  console.error(`not ok - ${e?.stack ?? e}`);
  if (session) await shot("ble-failure.png").catch(() => {});
} finally {
  stopBeating();
  if (session) await session.quit().catch(() => {});
  await stop(driver);
  if (fake) fake.stdin.end(); // EOF stops the fake
  await stop(fake);
  await stop(bus);
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(busDir, { recursive: true, force: true });
  console.log(`${failed ? "FAILED" : "passed"} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
process.exit(failed ? 1 : 0);
