// Flash rates in style.css against IEC 60601-1-8 Table 1 (alarm indicator lights):
// high priority red, 1.4–2.8 Hz, duty cycle 20–60 %; medium yellow, 0.4–0.8 Hz,
// 20–60 %; low steady. Alarm rows take their period from the engine's signal
// (inline --flash-period); the fixed durations here are the fallbacks and the
// "NO DATA FROM MONITOR CORE" banner, which has no engine signal.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const css = readFileSync(new URL("./style.css", import.meta.url), "utf8").replace(/\/\*[\s\S]*?\*\//g, "");

const RATE: Record<"high" | "medium", [number, number]> = { high: [1.4, 2.8], medium: [0.4, 0.8] };

/** `animation:` declarations inside the rule for `selector`. */
function animationsOf(selector: string): string[] {
  const out: string[] = [];
  const re = /([^{}]+)\{([^{}]*)\}/g;
  for (const m of css.matchAll(re)) {
    if (m[1].split(",").some((s) => s.trim() === selector)) {
      for (const d of m[2].matchAll(/animation\s*:\s*([^;]+);?/g)) out.push(d[1].trim());
    }
  }
  return out;
}

/** Every animation declaration in the file: [selector, value]. */
function allAnimations(): [string, string][] {
  const out: [string, string][] = [];
  for (const m of css.matchAll(/([^{}]+)\{([^{}]*)\}/g)) {
    for (const d of m[2].matchAll(/animation\s*:\s*([^;]+);?/g)) out.push([m[1].trim(), d[1].trim()]);
  }
  return out;
}

/** Keyframe stops (in %) of `@keyframes name`. */
function keyframeStops(name: string): number[] {
  const m = css.match(new RegExp(`@keyframes\\s+${name}\\s*\\{((?:[^{}]*\\{[^{}]*\\})*)\\s*\\}`));
  if (!m) throw new Error(`no @keyframes ${name}`);
  return [...m[1].matchAll(/([\d.]+)%\s*\{/g)].map((x) => Number(x[1]));
}

/** Seconds from "0.5s" or "var(--flash-period, 0.5s)" (the fallback). */
function seconds(v: string): number {
  const m = v.match(/([\d.]+)(m?s)\)?$/);
  if (!m) throw new Error(`no duration in ${v}`);
  return Number(m[1]) / (m[2] === "ms" ? 1000 : 1);
}

interface Flash {
  name: string;
  periodS: number;
  /** Fraction of the period in the first keyframe's ("on") state. */
  duty: number;
}

/** "al-flash-high var(--flash-period, 0.5s) step-end infinite" → rate and duty. */
function flash(value: string): Flash {
  const name = value.split(/\s+/)[0];
  const dur = value.match(/(var\([^)]*\)|[\d.]+m?s)/);
  if (!dur) throw new Error(`no duration in ${value}`);
  expect(value, `${name}: two-state flash needs step-end`).toMatch(/step-end/);
  const stops = keyframeStops(name).sort((a, b) => a - b);
  expect(stops[0], `${name} starts at 0%`).toBe(0);
  expect(stops.length, `${name}: on and off`).toBe(2);
  return { name, periodS: seconds(dur[1]), duty: stops[1] / 100 };
}

describe("IEC 60601-1-8 Table 1 flash rates in style.css", () => {
  it("NO DATA FROM MONITOR CORE flashes as a high-priority alarm: 1.4–2.8 Hz, 20–60 % duty, the red high flash", () => {
    const anims = animationsOf(".nodata-banner");
    expect(anims).toHaveLength(1);
    const f = flash(anims[0]);
    expect(f.name).toBe("al-flash-high");
    expect(1 / f.periodS).toBeGreaterThanOrEqual(RATE.high[0]);
    expect(1 / f.periodS).toBeLessThanOrEqual(RATE.high[1]);
    expect(f.duty).toBeGreaterThanOrEqual(0.2);
    expect(f.duty).toBeLessThanOrEqual(0.6);
  });

  it("every high/medium flash and its fallback period is inside its priority's band", () => {
    let checked = 0;
    for (const [sel, value] of allAnimations()) {
      const name = value.split(/\s+/)[0];
      const prio = /-high$/.test(name) ? "high" : /-medium$/.test(name) ? "medium" : null;
      if (!prio) continue;
      const f = flash(value);
      const hz = 1 / f.periodS;
      expect(hz, `${sel}: ${value}`).toBeGreaterThanOrEqual(RATE[prio][0]);
      expect(hz, `${sel}: ${value}`).toBeLessThanOrEqual(RATE[prio][1]);
      expect(f.duty, `${sel}: ${value}`).toBeGreaterThanOrEqual(0.2);
      expect(f.duty, `${sel}: ${value}`).toBeLessThanOrEqual(0.6);
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(8);
  });
});
