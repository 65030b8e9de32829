/**
 * Fault injection, armed by the test: `server.faults.next({ kind, path?, method?, times? })`.
 *
 * - `decline`: the next confirmation (create with `confirm=true`, or `/confirm`) of a matching request is
 *   declined as a card would be (402 card_error; `declineCode`, default `generic_decline`). Requests that do
 *   not confirm leave it armed.
 * - `timeout`: the request is never answered (until the client gives up or the server closes).
 * - `http500`: 500 with Stripe's `api_error` body.
 * - `close`: the connection is destroyed without a response (the client sees ECONNRESET / socket hang up).
 *
 * For `timeout`, `http500` and `close`, `process: true` performs the operation first (the idempotent
 * result is stored) and only then loses the answer: "Stripe did it, the response never arrived". Without it
 * the fault happens before the API sees the request and nothing is stored for its idempotency key, so a
 * retry with the same key executes it afresh. Faults are matched in the order they were armed; each fires
 * `times` times (default 1).
 */

export type FaultKind = 'decline' | 'timeout' | 'http500' | 'close';

export interface FaultSpec {
  kind: FaultKind;
  /** Matched against the request path (no query string); any path when absent. */
  path?: RegExp;
  /** GET / POST; any when absent. */
  method?: string;
  times?: number;
  /** decline: the decline code (default `generic_decline`). */
  declineCode?: string;
  /** timeout / http500 / close: perform the operation before failing the transport. */
  process?: boolean;
}

export interface ArmedFault extends Required<Pick<FaultSpec, 'kind' | 'times'>> {
  spec: FaultSpec;
  fired: number;
}

export class FaultQueue {
  private readonly armed: ArmedFault[] = [];

  /** Arms a fault; returns it so a test can read `fired` afterwards. */
  next(spec: FaultSpec): ArmedFault {
    const times = spec.times ?? 1;
    if (!Number.isInteger(times) || times < 1) throw new Error('faults.next: times must be a positive integer');
    const fault: ArmedFault = { kind: spec.kind, times, spec, fired: 0 };
    this.armed.push(fault);
    return fault;
  }

  /** Faults not yet used up. */
  pending(): ArmedFault[] {
    return this.armed.filter((f) => f.fired < f.times);
  }

  clear(): void {
    this.armed.length = 0;
  }

  /** Takes (fires once) the first armed fault of one of `kinds` that matches the request. */
  take(kinds: readonly FaultKind[], method: string, path: string): ArmedFault | undefined {
    const fault = this.armed.find(
      (f) =>
        f.fired < f.times &&
        kinds.includes(f.kind) &&
        (f.spec.method === undefined || f.spec.method.toUpperCase() === method) &&
        (f.spec.path === undefined || ((f.spec.path.lastIndex = 0), f.spec.path.test(path))),
    );
    if (fault) fault.fired += 1;
    return fault;
  }
}
