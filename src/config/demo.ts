import { isIPv4, isIPv6 } from 'node:net';

/** The demo sign-in as decided once the configuration layers are merged: on or off, and why. */
export interface DemoDecision {
  /** POST /v1/demo/login and GET /v1/demo/users are served. */
  enabled: boolean;
  /** `setting`: demo.enabled was set (file, environment or override); `default`: decided from http.host and payments.provider. */
  source: 'setting' | 'default';
  /** One sentence for the start-up log and `callplane doctor`. */
  reason: string;
  /** Signs of a deployment others use: a non-loopback http.host, real payments (stripe). Empty on a laptop's defaults. */
  risks: string[];
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (bare === 'localhost') return true;
  if (isIPv4(bare)) return bare.startsWith('127.');
  if (isIPv6(bare)) {
    // The URL parser writes IPv6 in its shortest form: 0:0:0:0:0:0:0:1 → ::1, ::ffff:127.0.0.1 → ::ffff:7f00:1.
    let canonical: string;
    try {
      canonical = new URL(`http://[${bare}]`).hostname;
    } catch {
      return false; // a scoped address (fe80::1%eth0) is a link-local interface's, not loopback
    }
    return canonical === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
  }
  return false;
}

const HOW_TO_ENABLE = 'set demo.enabled: true (or CALLPLANE_DEMO_ENABLED=true) to turn it on';

/** Whether the start-up log warns: the default turned the sign-in off, or a setting turned it on where strangers may reach it. */
export function demoNeedsWarning(decision: DemoDecision): boolean {
  return decision.source === 'default' ? !decision.enabled : decision.enabled && decision.risks.length > 0;
}

/**
 * The demo sign-in creates accounts (hosts included) for anyone who asks, so it is only on by
 * itself where nobody else can reach it: on a loopback address, with the test payment provider.
 * Binding another address or taking real payments turns it off unless demo.enabled says otherwise
 * (README "The demo sign-in").
 */
export function resolveDemo(setting: boolean | null, http: { host: string }, payments: { provider: string }): DemoDecision {
  const risks = [
    isLoopbackHost(http.host) ? null : `http.host ${http.host} is not a loopback address`,
    payments.provider === 'stripe' ? 'payments.provider is stripe' : null,
  ].filter((risk): risk is string => risk !== null);
  if (setting === true) {
    const reason = risks.length > 0 ? `demo.enabled is true, although ${risks.join(' and ')}: anyone who can reach the server can create accounts` : 'demo.enabled is true';
    return { enabled: true, source: 'setting', reason, risks };
  }
  if (setting === false) return { enabled: false, source: 'setting', reason: 'demo.enabled is false', risks };
  if (risks.length > 0) return { enabled: false, source: 'default', reason: `off by default because ${risks.join(' and ')}; ${HOW_TO_ENABLE}`, risks };
  return { enabled: true, source: 'default', reason: `on by default: http.host ${http.host} is a loopback address and payments.provider is test`, risks };
}
