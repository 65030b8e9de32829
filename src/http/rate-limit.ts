import type { RateLimitsConfig, RateLimitRule } from '../config/schema.ts';
import { AppError } from '../shared/errors.ts';
import type { Clock } from '../shared/clock.ts';
import type { RateLimitRuleName } from './types.ts';

interface Window {
  startedMs: number;
  count: number;
}

/**
 * Fixed-window counters per (rule, IP) and per (rule, user), held in this process. A multi-node
 * deployment limits per node; that is acceptable for abuse control on token, guest and initiate.
 */
export class RateLimiter {
  private readonly windows = new Map<string, Window>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly config: RateLimitsConfig,
    private readonly clock: Clock,
    private readonly onLimited: (rule: RateLimitRuleName) => void = () => undefined,
  ) {
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  /** Counts one request; throws 429 rate_limited with Retry-After when over either limit. */
  hit(ruleName: RateLimitRuleName, ip: string, userId: string | null): void {
    if (!this.config.enabled) return;
    const rule = this.config[ruleName];
    const checks: Array<[string, number]> = [[`${ruleName}:ip:${ip}`, rule.per_ip]];
    if (userId) checks.push([`${ruleName}:user:${userId}`, rule.per_user]);
    for (const [key, limit] of checks) {
      const retryAfter = this.count(key, limit, rule);
      if (retryAfter !== null) {
        this.onLimited(ruleName);
        throw new AppError('rate_limited', `Too many requests; retry in ${retryAfter} s`, { retry_after_seconds: retryAfter }, { 'Retry-After': String(retryAfter) });
      }
    }
  }

  private count(key: string, limit: number, rule: RateLimitRule): number | null {
    const now = this.clock.nowMs();
    const windowMs = rule.window_seconds * 1000;
    let window = this.windows.get(key);
    if (!window || now - window.startedMs >= windowMs) {
      window = { startedMs: now, count: 0 };
      this.windows.set(key, window);
    }
    if (window.count >= limit) return Math.max(1, Math.ceil((window.startedMs + windowMs - now) / 1000));
    window.count += 1;
    return null;
  }

  private sweep(): void {
    const now = this.clock.nowMs();
    const longest = Math.max(this.config.token.window_seconds, this.config.guest.window_seconds, this.config.initiate.window_seconds) * 1000;
    for (const [key, window] of this.windows) if (now - window.startedMs >= longest) this.windows.delete(key);
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
