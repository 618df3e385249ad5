// End-to-end (issue 17): the central station. Two real `vigil gateway --simulate ward
// --feed 127.0.0.1:0` processes (each its own store, users and feed token) and the real
// app opened with `vigil central` in WebKitGTK, its feeds from the installer's site file.
// The page shows the beds of both gateways live; the central user signs in at both with
// one form; an alarm acknowledged from the central station comes back acknowledged in
// the bedside's own alarm state (and in the bedside's alarm log, as "<user> (central)");
// a gateway that falls silent (SIGSTOP) is "FEED LOST" on every one of its beds after the
// 3 s timeout and live again when it resumes, one killed is lost at once. The same page in
// a plain browser (WebKitGTK's MiniBrowser) from a static server of ui/dist.
// Screenshots: test-output/e2e/central.png, central-lost.png, central-browser.png.

import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import assert from "node:assert/strict";
import { app, out, root, shot, startDriver, startSession, step } from "./harness.mjs";
import { E2E_PASSWORD, E2E_USER, addUser } from "./users.mjs";
import { Builder, By, Capabilities, Key } from "selenium-webdriver";

/** WebKitGTK's own plain browser (no Tauri): the page as a browser user gets it. */
const MINIBROWSER = process.env.VIGIL_MINIBROWSER ?? "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";

const NURSE = { name: "central-nurse", role: "nurse", password: "central nurse password" };
const PASSPHRASE = "central-e2e-passphrase";
/** The feed's silence timeout (ui/src/central/station.ts FEED_LOST_AFTER_MS) and the margin we allow on a loaded machine. */
const FEED_LOST_AFTER_MS = 3000;
const LOST_BOUND_MS = FEED_LOST_AFTER_MS + 2000;

const dirs = [];
const tmp = (p) => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};
const procs = [];
// The harness's watchdog ends a hung run with process.exit: the gateways and temp dirs go too.
process.on("exit", () => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A gateway with its own store, user and token; resolves with its feed URL once it listens. */
async function startGateway(label, token) {
  const dataDir = tmp(`vigil-central-gw-${label}-`);
  const env = { ...process.env, VIGIL_PASSPHRASE: PASSPHRASE, VIGIL_FEED_TOKEN: token };
  addUser(app, dataDir, { ...NURSE, env });
  addUser(app, dataDir, { env }); // a clinician, who may read the alarm log at the end
  // Ward at 10x: bed 2 deteriorates and bed 3 desaturates, so alarms come within a minute.
  const gw = spawn(app, ["gateway", "--data-dir", dataDir, "--simulate", "ward", "--speed", "10", "--feed", "127.0.0.1:0", "--status-every", "3600"], {
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  procs.push(gw);
  let log = "";
  const url = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`gateway ${label}: no feed address within 60 s:\n${log}`)), 60000);
    gw.stderr.on("data", (d) => {
      log += d;
      // The feed says where it listens: "… ws://127.0.0.1:<port>/feed …".
      const m = /ws:\/\/127\.0\.0\.1:(\d+)/.exec(log);
      if (m) {
        clearTimeout(t);
        resolve(`ws://127.0.0.1:${m[1]}/feed`);
      }
    });
    gw.on("exit", (c) => reject(new Error(`gateway ${label} exited ${c}:\n${log}`)));
  });
  return { gw, dataDir, url, env };
}

/** Every tile: station, bed, live/lost, banner, HR. */
function tiles(s) {
  return s.executeScript(() =>
    [...document.querySelectorAll('[data-testid="c-tile"]')].map((el) => ({
      station: el.getAttribute("data-station"),
      bed: el.getAttribute("data-bed"),
      live: el.getAttribute("data-live") === "true",
      lost: el.getAttribute("data-lost") === "true",
      banner: el.querySelector('[data-testid="c-feed-state"]')?.textContent ?? "",
      hr: el.querySelector('[data-testid="c-hr"]')?.textContent ?? "",
    })),
  );
}

/** The cross-station alarm list. */
function alarmRows(s) {
  return s.executeScript(() =>
    [...document.querySelectorAll('[data-testid="c-alarms"] [data-testid="c-alarm"]')].map((el) => ({
      key: el.getAttribute("data-key"),
      priority: el.getAttribute("data-priority"),
      acknowledged: el.getAttribute("data-acknowledged") === "true",
      text: el.textContent,
      canAck: !!el.querySelector('[data-testid="c-ack"]'),
    })),
  );
}

/**
 * Clicks the Ack of the list row `key` (any row: null) in one script: the list is redrawn when
 * any row changes, so a found element can be replaced before a separate click reaches it.
 */
async function clickAck(s, key) {
  await s.wait(
    () =>
      s.executeScript((k) => {
        const sel = k === null ? '[data-testid="c-alarms"] [data-testid="c-ack"]' : `[data-testid="c-alarms"] [data-key="${k}"] [data-testid="c-ack"]`;
        const b = document.querySelector(sel);
        if (b) b.click();
        return !!b;
      }, key),
    10000,
    `Ack of ${key ?? "any alarm"}`,
  );
}

const results = (s) => s.executeScript(() => [...document.querySelectorAll('[data-testid="c-result"]')].map((e) => e.textContent));

const port = 4492;
let driver;
let s;
let failed = false;
const figures = {};

try {
  const a = await startGateway("a", "tok-ward-a.0123456789");
  const b = await startGateway("b", "tok-ward-b.9876543210");
  // The installer's file (root-owned directory): which feeds the central station watches.
  const siteDir = tmp("vigil-central-site-");
  writeFileSync(
    join(siteDir, "site.json"),
    JSON.stringify({
      central: {
        feeds: [
          { name: "Ward A", url: a.url, token_env: "VIGIL_FEED_TOKEN_A" },
          { name: "Ward B", url: b.url, token_env: "VIGIL_FEED_TOKEN_B" },
        ],
      },
    }),
  );
  const centralDir = tmp("vigil-central-app-");
  const env = {
    ...process.env,
    VIGIL_SITE_CONFIG: join(siteDir, "site.json"),
    VIGIL_FEED_TOKEN_A: "tok-ward-a.0123456789",
    VIGIL_FEED_TOKEN_B: "tok-ward-b.9876543210",
  };
  delete env.VIGIL_PASSPHRASE; // the central station opens no store
  driver = await startDriver(port, env, 300000);
  s = await startSession(port, ["central", "--data-dir", centralDir]);

  await step("[central] beds of both gateways live, with numerics", async () => {
    const t0 = Date.now();
    await s.wait(
      async () => {
        const t = await tiles(s);
        const live = (st) => t.filter((x) => x.station === st && x.live && /^\d+$/.test(x.hr));
        return live("Ward A").length >= 2 && live("Ward B").length >= 2;
      },
      60000, // the webview's first start is slow on a loaded machine
      "both stations' beds live",
    );
    figures.first_live_ms = Date.now() - t0;
    const t = await tiles(s);
    console.log(`   ${t.length} tiles: ${[...new Set(t.map((x) => x.station))].join(", ")}; live after ${figures.first_live_ms} ms`);
    assert.ok(t.every((x) => !x.lost), "no station lost");
    assert.equal(await s.executeScript(() => document.title), "Vigil — central station");
  });

  await step("[central] acknowledge before signing in is refused, nothing sent", async () => {
    await s.wait(async () => (await alarmRows(s)).some((r) => r.canAck), 90000, "an alarm to acknowledge");
    await clickAck(s, null);
    await s.wait(async () => (await results(s)).some((r) => r.includes("sign in at the central station first")), 5000, "refusal shown");
  });

  await step("[central] one sign-in form signs in at every station, results per station", async () => {
    await s.findElement(By.css('[data-testid="c-user"]')).sendKeys(NURSE.name);
    await s.findElement(By.css('[data-testid="c-password"]')).sendKeys("wrong password here");
    await s.findElement(By.css('[data-testid="c-sign-in"]')).click();
    await s.wait(async () => (await results(s)).filter((r) => r.includes("sign-in failed")).length === 2, 10000, "two failures reported");
    // The stations throttle a name after a wrong password (1 s, then 2 s, …): the same counting as at the bedside.
    await new Promise((r) => setTimeout(r, 1500));
    await s.findElement(By.css('[data-testid="c-user"]')).clear();
    await s.findElement(By.css('[data-testid="c-user"]')).sendKeys(NURSE.name);
    await s.findElement(By.css('[data-testid="c-password"]')).sendKeys(NURSE.password);
    await s.findElement(By.css('[data-testid="c-sign-in"]')).click();
    await s.wait(
      async () => {
        const r = await results(s);
        return r.some((x) => x.includes(`Ward A: signed in as ${NURSE.name}`)) && r.some((x) => x.includes(`Ward B: signed in as ${NURSE.name}`));
      },
      10000,
      "signed in at both",
    );
  });

  await step("[central] an alarm acknowledged at the central station comes back acknowledged in the bedside's state", async () => {
    // One of Ward A's (station 0, whose log is read at the end) whose condition is present:
    // acknowledging a latched one (condition over) ends it, so it would not be seen acknowledged.
    const candidate = (r) => r.canAck && !r.acknowledged && r.key.startsWith("0:") && !r.text.includes("LATCHED");
    // Every drawn state of the list, sampled every 50 ms (the page draws every 250 ms at most):
    // a condition that ends soon after the acknowledgement still shows it was acknowledged.
    await s.executeScript(() => {
      window.__acked = {};
      setInterval(() => {
        for (const e of document.querySelectorAll('[data-testid="c-alarms"] [data-acknowledged="true"]')) window.__acked[e.getAttribute("data-key")] = e.textContent;
      }, 50);
    });
    // At 10x a condition can end (and the alarm latch) between drawing and the click; an
    // acknowledged latched alarm is gone, not shown acknowledged: then try the next one.
    let before;
    let seen;
    for (let attempt = 1; attempt <= 4 && !seen; attempt++) {
      await s.wait(async () => (await alarmRows(s)).some(candidate), 90000, "a present alarm at Ward A");
      before = (await alarmRows(s)).find(candidate);
      const last = (await results(s)).join("\n"); // the list keeps 6 rows: compare, not count
      const t0 = Date.now();
      await clickAck(s, before.key);
      await s.wait(async () => (await results(s)).join("\n") !== last, 10000, "acknowledge result");
      await s.wait(
        async () => !!(await s.executeScript((k) => window.__acked[k], before.key)) || !(await alarmRows(s)).some((r) => r.key === before.key),
        10000,
        "acknowledged in the next alarm state, or ended",
      );
      seen = await s.executeScript((k) => window.__acked[k], before.key);
      figures.ack_round_trip_ms = Date.now() - t0;
      figures.ack_attempts = attempt;
    }
    assert.ok(seen, "an alarm acknowledged from the central station shown acknowledged");
    console.log(`   ${before.key}: "${seen.trim()}" after ${figures.ack_round_trip_ms} ms (attempt ${figures.ack_attempts})`);
    // The bedside's own record of who acknowledged it, back in its alarm state.
    assert.match(seen, new RegExp(`acknowledged at central by ${NURSE.name}`));
    await shot(s, "central.png");
    figures.acked = before.key;
  });

  await step("[central] in a plain browser: ui/dist from a static server, a station typed into the setup form, its beds live", async () => {
    // Any static server will do (README); this one serves ui/dist as built for the app.
    const dist = join(root, "ui/dist");
    const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css" };
    const web = createServer((req, res) => {
      const p = join(dist, new URL(req.url, "http://x").pathname.replace(/\.\.+/g, ""));
      let body;
      try {
        body = readFileSync(p);
      } catch {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": types[extname(p)] ?? "application/octet-stream" }).end(body);
    });
    await new Promise((r) => web.listen(0, "127.0.0.1", r));
    const wd = spawn("WebKitWebDriver", [`--port=${port + 4}`], { stdio: "ignore", detached: true });
    // Its own process group, stopped below; a hang here is cut by this guard.
    const guard = setTimeout(() => {
      try {
        process.kill(-wd.pid, "SIGKILL");
      } catch {}
    }, 120000);
    let browser;
    try {
      for (let i = 0; i < 50 && !browser; i++) {
        await new Promise((r) => setTimeout(r, 200));
        const caps = new Capabilities();
        caps.setBrowserName("MiniBrowser");
        caps.set("webkitgtk:browserOptions", { binary: MINIBROWSER, args: ["--automation"] });
        browser = await new Builder().withCapabilities(caps).usingServer(`http://127.0.0.1:${port + 4}/`).build().catch(() => undefined);
      }
      assert.ok(browser, "MiniBrowser session");
      await browser.get(`http://127.0.0.1:${web.address().port}/central.html`);
      await browser.findElement(By.css('[data-testid="c-setup-name"]')).sendKeys("Ward A");
      await browser.findElement(By.css('[data-testid="c-setup-url"]')).sendKeys(a.url);
      await browser.findElement(By.css('[data-testid="c-setup-token"]')).sendKeys("tok-ward-a.0123456789");
      await browser.findElement(By.css('[data-testid="c-setup-add"]')).click();
      // The form clears its fields once it took the station. WebKitWebDriver's click on
      // MiniBrowser is sometimes not delivered right after typing (the submit handler never
      // runs; seen in ~1 of 2 runs on a busy machine, never with a round trip before it):
      // then the station is submitted the other way a user can, Enter in the token field.
      const taken = async () => (await browser.findElement(By.css('[data-testid="c-setup-name"]')).getAttribute("value")) === "";
      if (!(await browser.wait(taken, 5000).catch(() => false))) {
        console.log("   the click on Add station was not delivered; pressing Enter in the token field");
        await browser.findElement(By.css('[data-testid="c-setup-token"]')).sendKeys(Key.ENTER);
        await browser.wait(taken, 5000, "the setup form did not take the station");
      }
      await browser
        .wait(async () => (await tiles(browser)).filter((x) => x.station === "Ward A" && x.live && /^\d+$/.test(x.hr)).length >= 2, 45000, "Ward A live in the browser")
        .catch(async (e) => {
          writeFileSync(join(out, "central-browser-failure.png"), Buffer.from(await browser.takeScreenshot(), "base64"));
          throw e;
        });
      const stored = await browser.executeScript(() => ({ session: Object.keys(sessionStorage), local: Object.keys(localStorage) }));
      assert.deepEqual(stored, { session: ["vigil.central.feeds"], local: [] }, "the token is kept in sessionStorage only");
      writeFileSync(join(out, "central-browser.png"), Buffer.from(await browser.takeScreenshot(), "base64"));
    } finally {
      if (browser) await browser.quit().catch(() => {});
      clearTimeout(guard);
      try {
        process.kill(-wd.pid, "SIGTERM");
      } catch {}
      web.close();
    }
  });

  /** Waits until every tile of Ward B is lost with the words; returns how long it took. */
  const wardBLost = async (t0) => {
    await s.wait(
      async () => {
        const t = await tiles(s);
        const wb = t.filter((x) => x.station === "Ward B");
        return wb.length > 0 && wb.every((x) => x.lost && !x.live && /^FEED LOST — station Ward B, since \d\d:\d\d:\d\d$/.test(x.banner));
      },
      LOST_BOUND_MS + 5000,
      "Ward B lost on every bed",
    );
    return Date.now() - t0;
  };

  await step("[central] a silent gateway (stopped: connection open, no message) is FEED LOST on every bed after 3 s, and live again when it resumes", async () => {
    const t0 = Date.now();
    b.gw.kill("SIGSTOP");
    figures.silent_lost_ms = await wardBLost(t0);
    console.log(`   lost after ${figures.silent_lost_ms} ms of silence (timeout ${FEED_LOST_AFTER_MS} ms, bound ${LOST_BOUND_MS} ms)`);
    // Not before the timeout (less the last heartbeat's 250 ms): a busy station is no lost one.
    assert.ok(figures.silent_lost_ms >= FEED_LOST_AFTER_MS - 300, `lost after only ${figures.silent_lost_ms} ms`);
    assert.ok(figures.silent_lost_ms <= LOST_BOUND_MS, `lost after ${figures.silent_lost_ms} ms`);
    assert.ok((await tiles(s)).filter((x) => x.station === "Ward A").every((x) => x.live), "Ward A still live");
    await shot(s, "central-lost.png");
    const t1 = Date.now();
    b.gw.kill("SIGCONT");
    await s.wait(
      async () => {
        const wb = (await tiles(s)).filter((x) => x.station === "Ward B");
        return wb.length > 0 && wb.every((x) => x.live && !x.lost && x.banner === "" && /^\d+$/.test(x.hr));
      },
      30000,
      "Ward B live again",
    );
    figures.resumed_live_ms = Date.now() - t1;
    console.log(`   live again ${figures.resumed_live_ms} ms after it resumed (reconnect with backoff, fresh snapshot)`);
  });

  await step("[central] a killed gateway is FEED LOST on every one of its beds at once, never a frozen picture", async () => {
    const t0 = Date.now();
    b.gw.kill("SIGKILL");
    figures.lost_shown_ms = await wardBLost(t0);
    const t = await tiles(s);
    assert.ok(t.filter((x) => x.station === "Ward A").every((x) => x.live && !x.lost), "Ward A still live");
    const lostRows = (await alarmRows(s)).filter((r) => r.text.includes("FEED LOST"));
    assert.equal(lostRows.length, t.filter((x) => x.station === "Ward B").length, "a lost-feed alarm per bed");
    assert.ok(lostRows.every((r) => r.priority === "high"));
    console.log(`   shown after ${figures.lost_shown_ms} ms (bound ${LOST_BOUND_MS} ms)`);
    assert.ok(figures.lost_shown_ms <= LOST_BOUND_MS, `lost after ${figures.lost_shown_ms} ms`);
  });

  await step("[central] the bedside's alarm log records the acknowledgement as '<user> (central)'", async () => {
    a.gw.kill("SIGTERM");
    await new Promise((r) => a.gw.on("exit", r));
    const csv = execFileSync(app, ["alarms", "export", "--events", "--data-dir", a.dataDir], {
      env: { ...a.env, VIGIL_USER: E2E_USER, VIGIL_USER_PASSWORD: E2E_PASSWORD },
    }).toString();
    const acks = csv.split("\n").filter((l) => /acknowledged/i.test(l) && l.includes(`${NURSE.name} (central)`));
    assert.ok(acks.length >= 1, `no central acknowledgement in Ward A's log (${csv.split("\n").length} lines)`);
    console.log(`   Ward A's log: ${acks.length} acknowledgement(s) by ${NURSE.name} (central)`);
  });
  console.log(`figures: ${JSON.stringify(figures)}`);
} catch (e) {
  failed = true;
  console.error(`not ok - ${e?.stack ?? e}`);
  if (s) await shot(s, "central-failure.png").catch(() => {});
} finally {
  if (s) await s.quit().catch(() => {});
  driver?.kill();
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
