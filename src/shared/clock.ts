/** Time is injected so that billing windows and token expiry can be driven by tests. */
export interface Clock {
  now(): Date;
  nowMs(): number;
}

export const systemClock: Clock = {
  now: () => new Date(),
  nowMs: () => Date.now(),
};

/** A clock that only moves when told to: for unit tests of time rules. */
export class ManualClock implements Clock {
  private currentMs: number;
  constructor(start: Date | number = Date.UTC(2026, 0, 1)) {
    this.currentMs = typeof start === 'number' ? start : start.getTime();
  }
  now(): Date {
    return new Date(this.currentMs);
  }
  nowMs(): number {
    return this.currentMs;
  }
  advance(ms: number): void {
    this.currentMs += ms;
  }
  set(at: Date | number): void {
    this.currentMs = typeof at === 'number' ? at : at.getTime();
  }
}

/**
 * Time running `scale` times faster than the wall clock, counted from `anchorMs`: at the anchor both
 * agree; one real second later this clock is `scale` seconds on. A fixed anchor keeps one timeline
 * across restarts. Testing and demos only (config `clock.scale`).
 */
export class ScaledClock implements Clock {
  constructor(
    readonly scale: number,
    private readonly anchorMs: number,
    private readonly realNowMs: () => number = Date.now,
  ) {
    if (!(scale >= 1)) throw new Error(`clock scale must be >= 1 (got ${scale})`);
  }
  now(): Date {
    return new Date(this.nowMs());
  }
  nowMs(): number {
    return Math.floor(this.anchorMs + (this.realNowMs() - this.anchorMs) * this.scale);
  }
}

/** How many real milliseconds until `atMs` on `clock` (0 when it is due). */
export function realDelayMs(clock: Clock, atMs: number): number {
  const scale = clock instanceof ScaledClock ? clock.scale : 1;
  return Math.max(0, Math.ceil((atMs - clock.nowMs()) / scale));
}
