// Alarm sound with the Web Audio API. Which pattern plays is decided in alarms.ts
// (pure); this module only makes the sound. Browsers/webviews start an AudioContext
// "suspended" until a user gesture: `running` says whether sound can actually be
// made, and the screen shows a "Click to enable alarm sound" banner until it can.

import type { Priority } from "./contract";
import { type AudioPattern, audioPattern } from "./alarms";

type Ctx = AudioContext;

export class AlarmAudio {
  private ctx: Ctx | null = null;
  private failed = false;
  private playing: Priority | null = null;
  /** ctx.currentTime at which the next burst starts. */
  private nextBurstAt = 0;
  private nodes: OscillatorNode[] = [];
  private master: GainNode | null = null;

  /** Creates the context (may start suspended). Safe to call repeatedly. */
  private ensure(): Ctx | null {
    if (this.ctx || this.failed) return this.ctx;
    try {
      const C: typeof AudioContext | undefined =
        window.AudioContext ?? (window as unknown as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext;
      if (!C) {
        this.failed = true;
        return null;
      }
      this.ctx = new C();
      this.master = this.ctx.createGain();
      this.master.gain.value = 0.6;
      this.master.connect(this.ctx.destination);
    } catch {
      this.failed = true;
      this.ctx = null;
    }
    return this.ctx;
  }

  /** Call from any user gesture (click, key): resumes a suspended context. */
  unlock(): void {
    const ctx = this.ensure();
    if (ctx && ctx.state !== "running") void ctx.resume().catch(() => {});
  }

  /** Sound can actually be produced now. */
  get running(): boolean {
    return this.ensure()?.state === "running";
  }

  /** The pattern currently requested (even if blocked). */
  get current(): Priority | null {
    return this.playing;
  }

  /** Request a pattern (null = silence). Call every frame; cheap when nothing changed. */
  set(p: Priority | null): void {
    const ctx = this.ensure();
    if (p !== this.playing) {
      this.stopNodes();
      this.playing = p;
      this.nextBurstAt = 0; // start the new pattern at once
    }
    if (!ctx || ctx.state !== "running" || p === null) return;
    const now = ctx.currentTime;
    if (this.nextBurstAt === 0 || now >= this.nextBurstAt - 0.05) {
      const pat = audioPattern(p);
      const start = Math.max(now + 0.02, this.nextBurstAt);
      this.burst(ctx, pat, start);
      this.nextBurstAt = start + pat.periodMs / 1000;
    }
  }

  private burst(ctx: Ctx, pat: AudioPattern, start: number): void {
    // Drop finished oscillators.
    this.nodes = this.nodes.filter((n) => (n as unknown as { _end: number })._end > ctx.currentTime);
    const len = pat.pulseMs / 1000;
    for (const off of pat.pulsesMs) {
      const t = start + off / 1000;
      const osc = ctx.createOscillator();
      // Triangle: harmonic content (odd harmonics) makes the tone easier to localise.
      osc.type = "triangle";
      osc.frequency.value = pat.frequencyHz;
      const g = ctx.createGain();
      g.gain.setValueAtTime(0, t);
      g.gain.linearRampToValueAtTime(1, t + 0.012);
      g.gain.setValueAtTime(1, t + len - 0.02);
      g.gain.linearRampToValueAtTime(0, t + len);
      osc.connect(g);
      g.connect(this.master ?? ctx.destination);
      osc.start(t);
      osc.stop(t + len + 0.01);
      (osc as unknown as { _end: number })._end = t + len + 0.01;
      this.nodes.push(osc);
    }
  }

  private stopNodes(): void {
    for (const n of this.nodes) {
      try {
        n.stop();
      } catch {
        // already stopped
      }
    }
    this.nodes = [];
  }
}
