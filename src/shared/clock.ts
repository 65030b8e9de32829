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
