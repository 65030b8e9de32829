/**
 * Where the `test` payment provider (./test.ts) keeps its holds and its idempotency replies.
 *
 *   MemoryTestPaymentStore: Maps, for the life of the process. The default of
 *     `new TestPaymentProvider()`: unit tests, and integration tests that hand the server a provider
 *     they inspect (it outlives the server, as Stripe would).
 *   PgTestPaymentStore: two tables of the server's database (migration 0004_test_payments). What
 *     `payments.provider: test` uses, so holds and replies survive a restart or a crash, as Stripe's do.
 *
 * Both run an idempotent operation atomically per key: concurrent callers with one key get one
 * execution and the same answer. The provider's rules (cards, amounts, hold lifecycle) live in
 * ./test.ts; a store only keeps state.
 */
import { sql } from 'kysely';
import type { Database, Tx } from '../../db/database.ts';
import { AppError, type ErrorCode } from '../../shared/errors.ts';
import { PaymentDeclined, ProviderUnavailable, type ProviderHoldStatus } from './types.ts';

export interface TestHold {
  holdId: string;
  callId: string;
  window: number;
  amountMinor: number;
  currency: string;
  paymentMethodId: string;
  destination: { accountId: string; applicationFeeMinor: number } | null;
  status: ProviderHoldStatus;
  amountCapturedMinor: number;
  /** Who ended the hold: our release call, or the provider (authorisation expired). */
  releasedBy: 'caller' | 'provider' | null;
  placedAtMs: number;
  settledAtMs: number | null;
}

export type NewTestHold = Omit<TestHold, 'holdId' | 'status' | 'amountCapturedMinor' | 'releasedBy' | 'settledAtMs'>;
export type TestHoldChange = Partial<Pick<TestHold, 'status' | 'amountCapturedMinor' | 'releasedBy' | 'settledAtMs'>>;

/** What one atomic unit of work (an operation, or a test hook) may do with the holds. */
export interface TestHoldAccess {
  /** A copy of the hold; PostgreSQL locks its row until the unit of work ends. */
  get(holdId: string): Promise<TestHold | undefined>;
  /** Stores a new `held` hold under a fresh id (pi_test_…, unique for the store's lifetime) and returns the id. */
  add(hold: NewTestHold): Promise<string>;
  update(holdId: string, change: TestHoldChange): Promise<void>;
}

export interface TestPaymentStore {
  /**
   * Runs `operation` once per idempotency key, atomically: the same key with the same fingerprint
   * replays the first answer (value or error); with another fingerprint it is an idempotency_conflict.
   */
  once<T>(key: string, fingerprint: string, operation: (holds: TestHoldAccess) => Promise<T>): Promise<T>;
  /** Runs `work` atomically, without idempotency (test hooks). */
  atomically<T>(work: (holds: TestHoldAccess) => Promise<T>): Promise<T>;
  /** A copy of one hold (no lock). */
  find(holdId: string): Promise<TestHold | undefined>;
  /** Copies of the holds (of one call, or all), in the order they were placed. */
  list(callId?: string): Promise<TestHold[]>;
}

export function testHoldId(sequence: number): string {
  return `pi_test_${String(sequence).padStart(8, '0')}`;
}

function idempotencyConflict(key: string): AppError {
  return new AppError('idempotency_conflict', `idempotency key ${key} was used with other arguments`, { idempotency_key: key });
}

function copyOf(hold: TestHold): TestHold {
  return { ...hold, destination: hold.destination ? { ...hold.destination } : null };
}

// ---- memory -------------------------------------------------------------------------------

type MemoryOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export class MemoryTestPaymentStore implements TestPaymentStore {
  private readonly holds = new Map<string, TestHold>();
  /** Idempotency: key → what was asked and what was answered (successes and declines alike, like Stripe). */
  private readonly replies = new Map<string, { fingerprint: string; outcome: MemoryOutcome }>();
  private sequence = 0;
  /** Units of work run one at a time: an operation that awaits cannot interleave with another. */
  private tail: Promise<unknown> = Promise.resolve();

  private readonly access: TestHoldAccess = {
    get: async (holdId) => {
      const hold = this.holds.get(holdId);
      return hold ? copyOf(hold) : undefined;
    },
    add: async (hold) => {
      this.sequence += 1;
      const holdId = testHoldId(this.sequence);
      this.holds.set(holdId, copyOf({ ...hold, holdId, status: 'held', amountCapturedMinor: 0, releasedBy: null, settledAtMs: null }));
      return holdId;
    },
    update: async (holdId, change) => {
      const hold = this.holds.get(holdId);
      if (!hold) throw new Error(`test payment store: no hold ${holdId} to update`);
      Object.assign(hold, change);
    },
  };

  once<T>(key: string, fingerprint: string, operation: (holds: TestHoldAccess) => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      const previous = this.replies.get(key);
      if (previous) {
        if (previous.fingerprint !== fingerprint) throw idempotencyConflict(key);
        if (!previous.outcome.ok) throw previous.outcome.error;
        return previous.outcome.value as T;
      }
      let outcome: MemoryOutcome;
      try {
        outcome = { ok: true, value: await operation(this.access) };
      } catch (error) {
        outcome = { ok: false, error };
      }
      this.replies.set(key, { fingerprint, outcome });
      if (!outcome.ok) throw outcome.error;
      return outcome.value as T;
    });
  }

  atomically<T>(work: (holds: TestHoldAccess) => Promise<T>): Promise<T> {
    return this.exclusive(() => work(this.access));
  }

  async find(holdId: string): Promise<TestHold | undefined> {
    const hold = this.holds.get(holdId);
    return hold ? copyOf(hold) : undefined;
  }

  async list(callId?: string): Promise<TestHold[]> {
    return [...this.holds.values()].filter((hold) => callId === undefined || hold.callId === callId).map(copyOf);
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.tail.then(work);
    this.tail = run.catch(() => undefined);
    return run;
  }
}

// ---- PostgreSQL ---------------------------------------------------------------------------

/** An error as test_payment_replies.outcome keeps it, to be thrown again as the same class. */
interface StoredError {
  kind: 'declined' | 'app_error';
  code: ErrorCode;
  message: string;
  decline_code: string | null;
  details: Record<string, unknown> | null;
}

type StoredOutcome = { value: unknown } | { error: StoredError };

/**
 * The answers a provider gives for good (declines, invalid_state, not_found, validation): recorded
 * and replayed. Anything else (the database failing mid-operation, a simulated outage) is not an
 * answer: the transaction rolls back and the key stays free for a retry, like Stripe after a 5xx.
 */
function storedError(error: unknown): StoredError | null {
  if (!(error instanceof AppError) || error instanceof ProviderUnavailable) return null;
  const details = error.details ?? null;
  if (error instanceof PaymentDeclined) return { kind: 'declined', code: error.code, message: error.message, decline_code: error.declineCode, details };
  return { kind: 'app_error', code: error.code, message: error.message, decline_code: null, details };
}

function revived(stored: StoredError): AppError {
  if (stored.kind === 'declined') return new PaymentDeclined(stored.decline_code ?? 'generic_decline', stored.message);
  return new AppError(stored.code, stored.message, stored.details ?? undefined);
}

type HoldRow = {
  hold_id: string;
  call_id: string;
  window: number;
  amount_minor: number;
  currency: string;
  payment_method_id: string;
  destination: { accountId: string; applicationFeeMinor: number } | null;
  status: ProviderHoldStatus;
  amount_captured_minor: number;
  released_by: 'caller' | 'provider' | null;
  placed_at: Date;
  settled_at: Date | null;
};

function holdOf(row: HoldRow): TestHold {
  return {
    holdId: row.hold_id,
    callId: row.call_id,
    window: row.window,
    amountMinor: Number(row.amount_minor),
    currency: row.currency,
    paymentMethodId: row.payment_method_id,
    destination: row.destination,
    status: row.status,
    amountCapturedMinor: Number(row.amount_captured_minor),
    releasedBy: row.released_by,
    placedAtMs: row.placed_at.getTime(),
    settledAtMs: row.settled_at ? row.settled_at.getTime() : null,
  };
}

export class PgTestPaymentStore implements TestPaymentStore {
  /**
   * `db` is the server's database: the test provider's calls take a connection of its pool (one at
   * a time per call) while the caller may hold another one.
   */
  constructor(private readonly db: Database) {}

  async once<T>(key: string, fingerprint: string, operation: (holds: TestHoldAccess) => Promise<T>): Promise<T> {
    const outcome = await this.transaction(async (tx): Promise<StoredOutcome> => {
      // Claim the key. A concurrent caller's insert waits here until the claimer commits (then finds
      // its answer) or rolls back (then claims the key itself): one execution per key.
      const claimed = await tx
        .insertInto('test_payment_replies')
        .values({ idempotency_key: key, fingerprint, outcome: null })
        .onConflict((oc) => oc.column('idempotency_key').doNothing())
        .returning('idempotency_key')
        .executeTakeFirst();
      if (!claimed) {
        const previous = await tx.selectFrom('test_payment_replies').select(['fingerprint', 'outcome']).where('idempotency_key', '=', key).executeTakeFirstOrThrow();
        if (previous.fingerprint !== fingerprint) throw idempotencyConflict(key);
        if (previous.outcome === null) throw new Error(`test payment store: key ${key} has no recorded answer`);
        return previous.outcome as StoredOutcome;
      }
      let answer: StoredOutcome;
      try {
        answer = { value: (await operation(this.access(tx))) ?? null };
      } catch (error) {
        const stored = storedError(error);
        if (!stored) throw error; // rolls the claim back
        answer = { error: stored };
      }
      await tx.updateTable('test_payment_replies').set({ outcome: JSON.stringify(answer) }).where('idempotency_key', '=', key).execute();
      return answer;
    });
    if ('error' in outcome) throw revived(outcome.error);
    return outcome.value as T;
  }

  atomically<T>(work: (holds: TestHoldAccess) => Promise<T>): Promise<T> {
    return this.transaction((tx) => work(this.access(tx)));
  }

  async find(holdId: string): Promise<TestHold | undefined> {
    const row = await this.guard(() => this.db.selectFrom('test_payment_holds').selectAll().where('hold_id', '=', holdId).executeTakeFirst());
    return row ? holdOf(row) : undefined;
  }

  async list(callId?: string): Promise<TestHold[]> {
    const rows = await this.guard(() => {
      let query = this.db.selectFrom('test_payment_holds').selectAll();
      if (callId !== undefined) query = query.where('call_id', '=', callId);
      // pi_test_ + a zero-padded sequence number: shorter ids first keeps numeric order past 8 digits.
      return query.orderBy((eb) => eb.fn('length', ['hold_id'])).orderBy('hold_id').execute();
    });
    return rows.map(holdOf);
  }

  private access(tx: Tx): TestHoldAccess {
    return {
      get: async (holdId) => {
        const row = await tx.selectFrom('test_payment_holds').selectAll().where('hold_id', '=', holdId).forUpdate().executeTakeFirst();
        return row ? holdOf(row) : undefined;
      },
      add: async (hold) => {
        const { rows } = await sql<{ n: number | string }>`select nextval('test_payment_hold_seq') as n`.execute(tx);
        const holdId = testHoldId(Number(rows[0]!.n));
        await tx
          .insertInto('test_payment_holds')
          .values({
            hold_id: holdId,
            call_id: hold.callId,
            window: hold.window,
            amount_minor: hold.amountMinor,
            currency: hold.currency,
            payment_method_id: hold.paymentMethodId,
            destination: hold.destination ? JSON.stringify(hold.destination) : null,
            status: 'held',
            amount_captured_minor: 0,
            released_by: null,
            placed_at: new Date(hold.placedAtMs),
            settled_at: null,
          })
          .execute();
        return holdId;
      },
      update: async (holdId, change) => {
        const result = await tx
          .updateTable('test_payment_holds')
          .set({
            ...(change.status !== undefined ? { status: change.status } : {}),
            ...(change.amountCapturedMinor !== undefined ? { amount_captured_minor: change.amountCapturedMinor } : {}),
            ...(change.releasedBy !== undefined ? { released_by: change.releasedBy } : {}),
            ...(change.settledAtMs !== undefined ? { settled_at: change.settledAtMs === null ? null : new Date(change.settledAtMs) } : {}),
          })
          .where('hold_id', '=', holdId)
          .executeTakeFirst();
        if (result.numUpdatedRows !== 1n) throw new Error(`test payment store: no hold ${holdId} to update`);
      },
    };
  }

  private transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    return this.guard(() => this.db.transaction().execute(work));
  }

  /** The provider's answers (AppErrors) pass; a failing database is the provider being unreachable: retry later. */
  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw new ProviderUnavailable('test provider: its database is unavailable', { cause: error });
    }
  }
}
