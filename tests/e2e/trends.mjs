// End-to-end (issue 15): a clinician reviews a PAST admission in the real app.
// Before the app starts, `vigil replay` writes a 7½-day stay at bed 1 into the
// data directory under the same key source the app then uses: HR (strap) and
// SpO2 (oximeter) every 5 s — sparse enough to replay in seconds, dense
// enough that no device goes stale between readings — a desaturation with
// known times, a 4-hour gap with no readings, then the discharge. The stay
// spans the spring clock change in the site's zone (Europe/London, 29 March
// 2026), so the flowsheet must have a 23-hour day. In the known hour
// (13:00 UTC on 30 March, 14:00 BST) a nurse enters RR, temperature, BP,
// ACVPU and air at 13:30 while HR rises to 95 and SpO2 falls to 93 for ten
// minutes: the hour's highest NEWS2 is then 6 (medium), whose parts the
// flowsheet must show, the entered ones marked.
//
// In the app the clinician signs in, opens Admissions…, opens the stay, shows
// 7 days (summaries), zooms into the desaturation hour with a real pointer
// drag (raw samples), overlays SpO2 on HR, opens the flowsheet and checks
// known hours, and prints the stay's report.

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { app, shot, startDriver, startSession, step, text } from "./harness.mjs";
import { E2E_PASSWORD, E2E_USER, addUser, signIn } from "./users.mjs";
import { By, until } from "selenium-webdriver";

const HOUR = 3_600_000;
const START = Date.parse("2026-03-24T00:00:00Z");
const END = Date.parse("2026-03-31T12:00:00Z"); // the discharge
const DESAT = [Date.parse("2026-03-30T14:00:00Z"), Date.parse("2026-03-30T14:20:00Z")];
const GAP = [Date.parse("2026-03-31T02:00:00Z"), Date.parse("2026-03-31T06:00:00Z")];
// NEWS2 (RCP NEWS2 2017, chart 1) in the known hour: at 13:30 UTC a nurse enters RR 22 (2 points),
// T 38.4 °C (1), systolic 120 (0), alert (0), on air (0); for 10 min HR is 95 (1) and SpO2 93 % (2, scale 1).
const NEWS2_AT = Date.parse("2026-03-30T13:30:00Z");
const NEWS2_MOVE = [NEWS2_AT, NEWS2_AT + 10 * 60_000];
const NEWS2_ENTRIES = ["respiration_rate=22", "temperature=38.4", "systolic=120", "consciousness=alert", "air_or_oxygen=air"];
const HR = 147842;
const SPO2 = 150456;
// Outside the desaturation each hour of the stay has one HR and one SpO2 value, so its median is known.
const hourOf = (t) => Math.floor((t - START) / HOUR);
const hrAt = (t) => 60 + (hourOf(t) % 20);
const spo2At = (t) => 95 + (hourOf(t) % 4);

/** The replay script (core/src/replay.rs): GATT bytes as a device sends them. */
function script() {
  const hex = (n) => n.toString(16).padStart(2, "0").toUpperCase();
  // IEEE 11073-20601 SFLOAT, exponent 0: a whole number below 2048, little-endian.
  const sfloat = (v) => `${hex(v & 0xff)} ${hex((v >> 8) & 0x0f)}`;
  const lines = [
    "t_ms,bed,device,kind,event,characteristic,payload",
    "0,bed-1,,,admit,,adult",
    "0,bed-1,hr-1,hr-strap,connect,,",
    "0,bed-1,oxi-1,oximeter,connect,,",
  ];
  for (let t = START + 5000; t < END; t += 5000) {
    if (t >= GAP[0] && t < GAP[1]) continue;
    // The nurse's entries come before that second's readings.
    if (t === NEWS2_AT) for (const e of NEWS2_ENTRIES) lines.push(`${NEWS2_AT - START},bed-1,,,news2,,${e}`);
    const desat = t >= DESAT[0] && t < DESAT[1];
    const moved = t >= NEWS2_MOVE[0] && t < NEWS2_MOVE[1];
    const hr = desat ? 118 : moved ? 95 : hrAt(t);
    const spo2 = desat ? 85 : moved ? 93 : spo2At(t);
    // Heart Rate Measurement (0x2A37): flags 0, uint8 bpm. PLX Continuous (0x2A5F): flags 0, SpO2, PR.
    lines.push(`${t - START},bed-1,hr-1,hr-strap,notify,2A37,00 ${hex(hr)}`);
    lines.push(`${t - START + 2000},bed-1,oxi-1,oximeter,notify,2A5F,00 ${sfloat(spo2)} ${sfloat(hr)}`);
  }
  lines.push(`${END - START},bed-1,,,discharge,,`);
  return lines.join("\n") + "\n";
}

const dataDir = mkdtempSync(join(tmpdir(), "vigil-past-"));
const siteDir = mkdtempSync(join(tmpdir(), "vigil-past-site-"));
writeFileSync(join(siteDir, "site.json"), JSON.stringify({ timezone: "Europe/London" }));
const env = { ...process.env, VIGIL_PASSPHRASE: "past-e2e-passphrase", VIGIL_SITE_CONFIG: join(siteDir, "site.json") };
const port = 4482;
let driver;
let s;
let failed = false;

const chartAttr = (name) => s.findElement(By.css('[data-testid="trend-chart"]')).getAttribute(`data-${name}`);
const chartRange = async () => [Number(await chartAttr("from")), Number(await chartAttr("to"))];
/** Waits until the chart shows the `span` (ms) ending at the discharge, drawn:
 * not the previous view still on screen while the new one loads. */
const drawn = (span) =>
  s.wait(async () => {
    const [from, to] = await chartRange();
    return (await chartAttr("loading")) === null && to === END && to - from === span;
  }, 20000, `no ${span / HOUR} h view ending at the discharge`);
const click = async (testid) => (await s.wait(until.elementLocated(By.css(`[data-testid="${testid}"]`)), 10000)).click();

/** Drags across the chart from time `a` to time `b` (ms): a real pointer drag. */
async function dragChart(a, b) {
  const [from, to] = await chartRange();
  const over = await s.findElement(By.css('[data-testid="trend-chart"] .u-over'));
  const r = await over.getRect();
  const x = (t) => Math.round(r.x + (r.width * (t - from)) / (to - from));
  const y = Math.round(r.y + r.height / 2);
  await s.actions({ bridge: true }).move({ x: x(a), y }).press().move({ x: Math.round((x(a) + x(b)) / 2), y }).move({ x: x(b), y }).release().perform();
}

/** The flowsheet's cells: row label and kind, column start (ms), text. */
const flowCells = () =>
  s.executeScript(() =>
    [...document.querySelectorAll('[data-testid="flow-cell"]')].map((td) => ({
      row: td.dataset.row,
      kind: td.dataset.kind,
      col: Date.parse(td.dataset.col),
      text: td.textContent,
      priority: td.dataset.priority ?? null,
      risk: td.dataset.risk ?? null,
      entered: td.dataset.entered === "true",
    })),
  );

try {
  await step("[past] a 7½-day stay replayed into the data directory under the app's key", async () => {
    const csv = join(siteDir, "past-stay.csv");
    writeFileSync(csv, script());
    const out = execFileSync(app, ["replay", csv, "--data-dir", dataDir, "--start", new Date(START).toISOString()], { env }).toString();
    console.log(`   ${out.trim().split("\n").pop()}`);
    addUser(app, dataDir, { env });
  });

  driver = await startDriver(port, env, 300000);
  // The stay is months old: a site that keeps readings for years (the default 30 days would purge it at start).
  s = await startSession(port, ["--data-dir", dataDir, "--simulate", "stable", "--retention-days", "3650"]);
  let admission = "";

  await step("[past] the clinician opens Admissions…: the discharged stay is listed with its bed, times and name", async () => {
    await s.wait(async () => /^\d+$/.test(await text(s, "hr-bed-1")), 30000, "no live HR at bed 1");
    await signIn(s);
    await click("admissions-open");
    const row = await s.wait(until.elementLocated(By.css('[data-testid="admission-row"][data-current="false"]')), 15000, "no past admission listed");
    admission = await row.getAttribute("data-admission");
    assert.equal(await row.getAttribute("data-bed"), "bed-1");
    const cells = await row.findElements(By.css("td"));
    assert.equal((await cells[1].getText()).trim(), "Replay patient bed-1", "a clinician sees the name");
    console.log(`   ${(await cells[0].getText()).trim()}, ${(await cells[2].getText()).trim()} to ${(await cells[3].getText()).trim()}`);
    await shot(s, "past-admissions.png");
    await click(`admission-open-${admission}`);
    await s.wait(until.elementLocated(By.css(`[data-testid="trends-stay-${admission}"] [data-testid="trend-chart"] canvas`)), 15000, "the stay's trends did not open");
  });

  await step("[past] 7 days back from the discharge come from the summaries; the gap stays a gap; the desaturation's alarm is marked", async () => {
    await click("trend-range-7d");
    await drawn(7 * 24 * HOUR);
    assert.equal(await chartAttr("raw"), "false");
    const [from, to] = await chartRange();
    assert.equal(to - from, 7 * 24 * HOUR);
    assert.equal(await chartAttr("series"), String(HR));
    assert.ok(Number(await chartAttr("runs")) >= 2, `HR drawn in ${await chartAttr("runs")} piece(s): the 4-hour gap is joined`);
    const alarms = await s.findElements(By.css('[data-testid="trend-mark"][data-kind="alarm"]'));
    assert.ok(alarms.length > 0, "the desaturation's alarm is not marked");
    console.log(`   7 days: ${await chartAttr("points")} points in ${await chartAttr("runs")} runs, ${alarms.length} alarm event(s); ${await text(s, "trend-status")}`);
    await shot(s, "past-7d.png");
    // Issue 15's trend figure, beside reading the same stay's raw samples
    // from the store (`vigil report --format csv`: another process, which
    // opens the store and derives its key first).
    const loadMs = await s.wait(async () => chartAttr("load-ms"), 10000, "no load time on the chart");
    const csv = join(dataDir, "stay.csv");
    const t0 = process.hrtime.bigint();
    execFileSync(app, ["report", "--admission", admission, "--format", "csv", "--out", csv, "--data-dir", dataDir, "--user", E2E_USER], {
      env: { ...env, VIGIL_USER_PASSWORD: E2E_PASSWORD },
    });
    const rawMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const rows = execFileSync("wc", ["-l", csv]).toString().trim().split(/\s+/)[0];
    rmSync(csv, { force: true }); // never leave a patient's readings behind
    console.log(`   7-day trend, click to drawn in the webview: ${loadMs} ms; the stay's ${Number(rows) - 1} raw readings read by \`vigil report --format csv\`: ${rawMs.toFixed(0)} ms`);
  });

  await step("[past] a pointer drag across the desaturation's hour zooms in to every sample; SpO2 overlaid on HR", async () => {
    await dragChart(DESAT[0] - 25 * 60_000, DESAT[0] + 35 * 60_000);
    await s.wait(async () => (await chartAttr("raw")) === "true", 15000, `not zoomed to raw samples: ${(await chartRange()).join("..")}`);
    const [from, to] = await chartRange();
    assert.ok(to - from <= 2 * HOUR && to - from >= 20 * 60_000, `zoomed to ${((to - from) / 60_000).toFixed(0)} min`);
    assert.ok(from <= DESAT[0] && to >= DESAT[1] - 10 * 60_000, "the desaturation is not in the zoomed range");
    await s.findElement(By.css(`[data-testid="trend-param-${SPO2}"]`)).click();
    await s.wait(async () => (await chartAttr("series")) === `${HR} ${SPO2}` && (await chartAttr("raw")) === "true", 10000, "SpO2 not overlaid");
    const points = (await chartAttr("points")).split(" ").map(Number);
    // One HR and one SpO2 every 5 s: ~12 per minute each.
    const minutes = (to - from) / 60_000;
    assert.ok(points.every((p) => p > minutes * 10), `only ${points} samples in ${minutes.toFixed(0)} min`);
    const spo2Alarm = await s.findElements(By.css('[data-testid="trend-mark"][data-kind="alarm"]'));
    assert.ok(spo2Alarm.length > 0, "the SpO2 alarm is not marked in the zoomed hour");
    console.log(`   zoomed ${new Date(from).toISOString()} .. ${new Date(to).toISOString()}: ${points.join(" + ")} samples; ${await text(s, "trend-status")}`);
    await shot(s, "past-zoomed.png");
  });

  await step("[past] the flowsheet: local hours (BST), hourly medians, the desaturation's alarm, blank hours in the gap", async () => {
    await click("trend-range-24h");
    await drawn(24 * HOUR);
    // The nurse's entries are marked on the day's chart as nurse entries, apart from alarms and NEWS2 changes.
    await s.wait(async () => (await s.findElements(By.css('[data-testid="trend-mark"][data-kind="news2_entry"]'))).length === NEWS2_ENTRIES.length, 15000, "the nurse's NEWS2 entries are not marked");
    const entryMark = await s.findElement(By.css('[data-testid="trend-mark"][data-kind="news2_entry"]'));
    assert.match(await entryMark.getText(), /Nurse entry\s*Entered: /);
    await click("trend-tab-flowsheet");
    await s.wait(async () => (await s.findElement(By.css('[data-testid="flowsheet"]')).getAttribute("data-to")) === String(END), 60000, "no flowsheet of the last day");
    const cells = await flowCells();
    const cell = (row, kind, t) => cells.find((c) => c.row === row && c.kind === kind && c.col === t);
    // 13:00 UTC is 14:00 BST: one value each the whole hour.
    const known = Date.parse("2026-03-30T13:00:00Z");
    assert.equal(cell("HR", "vital", known)?.text, String(hrAt(known)), "HR median 13:00 UTC");
    assert.equal(cell("SpO2", "vital", known)?.text, String(spo2At(known)), "SpO2 median 13:00 UTC");
    // The desaturation hour: 20 min at 85 % / 118 /min, 40 min at the hour's values: the median is the hour's.
    const desat = DESAT[0];
    assert.equal(cell("HR", "vital", desat)?.text, String(hrAt(desat)));
    assert.equal(cell("SpO2", "vital", desat)?.text, String(spo2At(desat)));
    const alarms = cell("Alarms", "alarms", desat);
    assert.ok(alarms && /^\d+ (high|medium|low)$/.test(alarms.text), `desaturation hour alarms: ${JSON.stringify(alarms)}`);
    // The gap: blank, never 0.
    for (let t = GAP[0]; t < GAP[1]; t += HOUR) assert.equal(cell("HR", "vital", t)?.text, "", `HR in the gap at ${new Date(t).toISOString()}`);
    // NEWS2 of the known hour: its highest score, 6 of medium risk, with that score's own parts;
    // those a nurse entered marked "*", and the hour's five entries counted.
    const news2 = cell("NEWS2", "news2", known);
    assert.equal(news2?.text, "6", `NEWS2 13:00 UTC: ${JSON.stringify(news2)}`);
    assert.equal(news2.risk, "medium");
    const parts = Object.fromEntries(["RR", "SpO2", "air", "BP", "HR", "ACVPU", "T"].map((p) => [p, cell(p, "subscore", known)?.text]));
    assert.deepEqual(parts, { RR: "2*", SpO2: "2", air: "0*", BP: "0*", HR: "1", ACVPU: "0*", T: "1*" }, "sub-scores of the hour's NEWS2");
    assert.equal(cell("RR", "subscore", known).entered, true);
    assert.equal(cell("HR", "subscore", known).entered, false, "HR was measured");
    assert.equal(cell("Nurse entries", "entries", known)?.text, String(NEWS2_ENTRIES.length));
    const head = await s.executeScript((t) => [...document.querySelectorAll('[data-testid="flowsheet"] th[data-start]')].find((th) => Date.parse(th.dataset.start) === t)?.innerText ?? "", known);
    assert.match(head, /14:00\s*BST/, "the column is the site's local hour");
    console.log(`   ${await s.findElement(By.css('[data-testid="flowsheet"]')).getAttribute("data-columns")} columns; 14:00 BST: HR ${cell("HR", "vital", known).text}, SpO2 ${cell("SpO2", "vital", known).text}, NEWS2 ${news2.text} (${Object.entries(parts).map(([k, v]) => `${k} ${v}`).join(" · ")}); desaturation hour alarms: ${alarms.text}`);
    // Scroll the desaturation hour into view for the screenshot.
    await s.executeScript(
      (t) => [...document.querySelectorAll('[data-testid="flow-cell"][data-row="Alarms"]')].find((td) => Date.parse(td.dataset.col) === t)?.scrollIntoView({ inline: "center", block: "nearest" }),
      desat,
    );
    await shot(s, "past-flowsheet.png");
  });

  await step("[past] the 7-day flowsheet has a 23-hour day where the clocks went forward", async () => {
    await click("trend-range-7d");
    await s.wait(async () => (await s.findElement(By.css('[data-testid="flowsheet"]')).getAttribute("data-from")) === String(END - 7 * 24 * HOUR), 120000, "no 7-day flowsheet");
    const dates = await s.executeScript(() => [...document.querySelectorAll('[data-testid="flowsheet"] th.flow-date')].map((th) => [th.textContent, Number(th.getAttribute("colspan"))]));
    const spring = dates.find(([d]) => d === "2026-03-29");
    assert.deepEqual(spring, ["2026-03-29", 23], JSON.stringify(dates));
    // Back to the chart: the range chosen under the flowsheet, drawn the dialog's full width.
    await click("trend-tab-chart");
    // The tab switch redraws the view (it was drawn into the hidden pane): wait for that redraw,
    // not the hidden one still on the page while it loads.
    await s.wait(
      async () => (await chartRange())[0] === END - 7 * 24 * HOUR && (await chartAttr("raw")) === "false" && (await chartAttr("loading")) === null,
      15000,
      "the chart does not show the 7 days",
    );
    const [chart, over] = await Promise.all(['[data-testid="trend-chart"]', '[data-testid="trend-chart"] .u-over'].map(async (c) => (await s.findElement(By.css(c)).getRect()).width));
    assert.ok(over > chart * 0.8, `the chart is drawn ${over} px wide in a ${chart} px pane`);
  });

  await step("[past] Report… prints the stay's range with the past patient's header", async () => {
    await click("trends-report");
    let status = "";
    await s.wait(async () => /^Report saved: |^Could not/.test((status = await text(s, "trends-report-status"))), 120000, "no report written");
    assert.match(status, /^Report saved: /, status);
    const path = status.replace(/^Report saved: /, "");
    try {
      assert.ok(existsSync(path), `no file at ${path}`);
      const pdf = execFileSync("pdftotext", ["-layout", path, "-"]).toString();
      assert.match(pdf, /Replay patient bed-1/);
      assert.match(pdf, /page 1\/\d+/);
    } finally {
      rmSync(path, { force: true }); // never leave a patient's report behind
    }
  });
} catch (e) {
  failed = true;
  console.error(`not ok - ${e?.stack ?? e}`);
  if (s) await shot(s, "past-failure.png").catch(() => {});
} finally {
  if (s) await s.quit().catch(() => {});
  driver?.kill();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(siteDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
