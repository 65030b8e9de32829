import { randomInt } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { sql } from 'kysely';
import type { DbHandle } from '../../db/database.ts';
import type { LinkRow, UserRole } from '../../db/schema.ts';
import { AppError } from '../../shared/errors.ts';
import { newId } from '../../shared/ids.ts';
import { CURRENCY_PATTERN, formatMoney, parseMoney } from '../../shared/money.ts';
import { DateTime, Strict, Ulid } from '../../shared/schema.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Actor, UserNotifier } from '../ports.ts';

/** Short codes: 8 characters of an alphabet without look-alikes (no 0/o, 1/l/i), URL-safe as they are. */
export const SHORT_CODE_ALPHABET = '23456789abcdefghjkmnpqrstuvwxyz';
export const SHORT_CODE_LENGTH = 8;
/** What a path may carry as a short code; anything else that matches no link is simply link_not_found. */
export const ShortCode = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: 'The link short code' });

const Money = Type.String({ pattern: '^(0|[1-9]\\d{0,9})(\\.\\d{1,2})?$', description: 'Per-minute rate as a decimal string, e.g. "2.00"; "0.00" is a free link' });
const Currency = Type.String({ pattern: CURRENCY_PATTERN, description: 'Lowercase ISO 4217 currency, e.g. "usd"' });
const WindowSize = Type.Integer({ minimum: 1, maximum: 60 });

export const CreateLinkBody = Strict({
  rate_per_minute: Money,
  currency: Currency,
  window_size_minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 60, default: 10 })),
  max_uses: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_147_483_647 })),
  expires_at: Type.Optional(DateTime),
  host_id: Type.Optional(Type.String({ pattern: Ulid.pattern, description: 'API key or admin only: the host (a ULID) the link is for' })),
});
export type CreateLinkInput = Static<typeof CreateLinkBody>;

const HostRef = Type.Object({ id: Ulid, display_name: Type.String() });

export const LinkSchema = Type.Object(
  {
    id: Ulid,
    short_code: Type.String(),
    host: HostRef,
    rate_per_minute: Type.String(),
    currency: Type.String(),
    window_size_minutes: WindowSize,
    max_uses: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
    uses: Type.Integer({ minimum: 0 }),
    expires_at: Type.Union([DateTime, Type.Null()]),
    created_at: DateTime,
    url: Type.String({ description: '<base URL>/l/<short_code>' }),
  },
  { title: 'Link' },
);
export type LinkDto = Static<typeof LinkSchema>;

/** What anyone holding the short code may see (GET /v1/links/{short_code}, no auth). */
export const PublicLinkSchema = Type.Object(
  {
    short_code: Type.String(),
    host: HostRef,
    rate_per_minute: Type.String(),
    currency: Type.String(),
    window_size_minutes: WindowSize,
    available: Type.Boolean({ description: 'The host has a live user socket and accepts calls' }),
    exhausted: Type.Boolean({ description: 'Every use of the link is taken' }),
  },
  { title: 'PublicLink' },
);
export type PublicLinkDto = Static<typeof PublicLinkSchema>;

export const AvailabilitySchema = Type.Object(
  {
    available: Type.Boolean({ description: 'The flag set with PUT (accepting calls)' }),
    online: Type.Boolean({ description: 'The user has a live user socket (/v1/ws)' }),
    accepting_calls: Type.Boolean(),
  },
  { title: 'Availability' },
);
export type AvailabilityDto = Static<typeof AvailabilitySchema>;

/** A guest token scoped "link:<code>" allows only that link; a token without a scope allows any. */
export function linkScopeAllows(scope: string | undefined, shortCode: string): boolean {
  if (scope === undefined) return true;
  return scope === `link:${shortCode}`;
}

export function linkUrl(baseUrl: string, shortCode: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/l/${encodeURIComponent(shortCode)}`;
}

export function newShortCode(): string {
  let code = '';
  for (let i = 0; i < SHORT_CODE_LENGTH; i++) code += SHORT_CODE_ALPHABET[randomInt(SHORT_CODE_ALPHABET.length)];
  return code;
}

export function isExhausted(link: Pick<LinkRow, 'max_uses' | 'uses'>): boolean {
  return link.max_uses !== null && link.uses >= link.max_uses;
}

const HOST_ROLES: ReadonlySet<string> = new Set<UserRole>(['host', 'admin']);

/** Who creates a link: the actor plus its role (null for the API key). */
export type LinkActor = Actor & { role: UserRole | null };
const SHORT_CODE_ATTEMPTS = 5;

function fieldError(path: string, message: string, summary: string): AppError {
  return new AppError('validation_failed', summary, { errors: [{ in: 'body', path, message }] });
}

function linkNotFound(shortCode: string): AppError {
  return new AppError('link_not_found', `Link ${shortCode} does not exist or has expired`);
}

/** Paid call links (README, "Paid link calls"). Links are soft-deleted: calls and their billing keep referencing them. */
export class LinkService {
  constructor(
    private readonly db: DbHandle,
    private readonly clock: Clock,
  ) {}

  withDb(db: DbHandle): LinkService {
    return new LinkService(db, this.clock);
  }

  /**
   * Creates a link for the calling host (role host or admin). The API key and admins may name another
   * host with host_id; anyone else naming a host other than themselves is refused.
   */
  async create(actor: LinkActor, input: CreateLinkInput, baseUrl: string): Promise<LinkDto> {
    const hostId = await this.resolveHost(actor, input.host_id);
    const rateMinor = parseMoney(input.rate_per_minute, 'rate_per_minute');
    let expiresAt: Date | null = null;
    if (input.expires_at !== undefined) {
      expiresAt = new Date(input.expires_at);
      if (expiresAt.getTime() <= this.clock.nowMs()) throw fieldError('/expires_at', 'must be in the future', 'expires_at must be in the future');
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const row = await this.db
          .insertInto('links')
          .values({
            id: newId(),
            short_code: newShortCode(),
            host_id: hostId,
            rate_minor: rateMinor,
            currency: input.currency,
            window_size_minutes: input.window_size_minutes ?? 10,
            max_uses: input.max_uses ?? null,
            expires_at: expiresAt,
            deleted_at: null,
            created_at: this.clock.now(),
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        return (await this.toDtos([row], baseUrl))[0]!;
      } catch (error) {
        // A short code collision (unique violation): draw another one.
        if ((error as { code?: string }).code === '23505' && attempt < SHORT_CODE_ATTEMPTS) continue;
        throw error;
      }
    }
  }

  /** Any link by code, deleted and expired included; undefined when the code never existed. */
  async find(shortCode: string): Promise<LinkRow | undefined> {
    return this.db.selectFrom('links').selectAll().where('short_code', '=', shortCode).executeTakeFirst();
  }

  async findById(linkId: string): Promise<LinkRow | undefined> {
    return this.db.selectFrom('links').selectAll().where('id', '=', linkId).executeTakeFirst();
  }

  /** A link a guest can call now; AppError link_not_found when missing, deleted or expired (clock now). */
  async usable(shortCode: string): Promise<LinkRow> {
    const link = await this.find(shortCode);
    if (!link || link.deleted_at !== null || (link.expires_at !== null && link.expires_at.getTime() <= this.clock.nowMs())) throw linkNotFound(shortCode);
    return link;
  }

  /**
   * Reserves one use atomically (UPDATE ... SET uses = uses + 1 WHERE max_uses IS NULL OR uses < max_uses);
   * AppError link_exhausted otherwise. A link deleted or expired in the meantime is link_not_found.
   */
  async reserveUse(linkId: string): Promise<void> {
    const now = this.clock.now();
    const reserved = await this.db
      .updateTable('links')
      .set({ uses: sql<number>`uses + 1` })
      .where('id', '=', linkId)
      .where('deleted_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .where((eb) => eb.or([eb('max_uses', 'is', null), eb('uses', '<', eb.ref('max_uses'))]))
      .returning('id')
      .executeTakeFirst();
    if (reserved) return;
    const link = await this.findById(linkId);
    if (!link || link.deleted_at !== null || (link.expires_at !== null && link.expires_at.getTime() <= now.getTime())) throw linkNotFound(link?.short_code ?? linkId);
    throw new AppError('link_exhausted', `Link ${link.short_code} has reached its maximum number of uses`, { max_uses: link.max_uses });
  }

  /** Gives a reserved use back (never below 0). Releasing on a deleted or expired link is fine. */
  async releaseUse(linkId: string): Promise<void> {
    await this.db
      .updateTable('links')
      .set({ uses: sql<number>`uses - 1` })
      .where('id', '=', linkId)
      .where('uses', '>', 0)
      .execute();
  }

  /** The live (not deleted) links of one host, or of every host when hostId is null; newest first. */
  async list(hostId: string | null, page: number, perPage: number, baseUrl: string): Promise<{ rows: LinkDto[]; total: number }> {
    let base = this.db.selectFrom('links').where('deleted_at', 'is', null);
    if (hostId !== null) base = base.where('host_id', '=', hostId);
    const [rows, count] = await Promise.all([
      base.selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(perPage).offset((page - 1) * perPage).execute(),
      base.select(sql<number>`count(*)::int`.as('total')).executeTakeFirstOrThrow(),
    ]);
    return { rows: await this.toDtos(rows, baseUrl), total: count.total };
  }

  /** The public view of a usable link; `isAvailable` decides the host's availability. */
  async publicView(shortCode: string, availability: Pick<HostAvailability, 'isAvailable'>): Promise<PublicLinkDto> {
    const link = await this.usable(shortCode);
    const [host, available] = await Promise.all([this.hostRef(link.host_id), availability.isAvailable(link.host_id)]);
    return {
      short_code: link.short_code,
      host,
      rate_per_minute: formatMoney(link.rate_minor),
      currency: link.currency,
      window_size_minutes: link.window_size_minutes,
      available,
      exhausted: isExhausted(link),
    };
  }

  /** Soft delete by the owning host or an admin; unknown or already deleted links are link_not_found. */
  async delete(actor: Actor, shortCode: string): Promise<void> {
    const link = await this.find(shortCode);
    if (!link || link.deleted_at !== null) throw linkNotFound(shortCode);
    if (!actor.isAdmin && actor.userId !== link.host_id) throw new AppError('forbidden', 'Only the link\u2019s host or an admin may delete it');
    await this.db.updateTable('links').set({ deleted_at: this.clock.now() }).where('id', '=', link.id).where('deleted_at', 'is', null).execute();
  }

  async toDtos(rows: LinkRow[], baseUrl: string): Promise<LinkDto[]> {
    if (rows.length === 0) return [];
    const hostIds = [...new Set(rows.map((r) => r.host_id))];
    const hosts = await this.db.selectFrom('users').select(['id', 'display_name']).where('id', 'in', hostIds).execute();
    const names = new Map(hosts.map((h) => [h.id, h.display_name]));
    return rows.map((row) => ({
      id: row.id,
      short_code: row.short_code,
      host: { id: row.host_id, display_name: names.get(row.host_id) ?? '' },
      rate_per_minute: formatMoney(row.rate_minor),
      currency: row.currency,
      window_size_minutes: row.window_size_minutes,
      max_uses: row.max_uses,
      uses: row.uses,
      expires_at: row.expires_at === null ? null : row.expires_at.toISOString(),
      created_at: row.created_at.toISOString(),
      url: linkUrl(baseUrl, row.short_code),
    }));
  }

  private async hostRef(hostId: string): Promise<{ id: string; display_name: string }> {
    const host = await this.db.selectFrom('users').select(['id', 'display_name']).where('id', '=', hostId).executeTakeFirst();
    return { id: hostId, display_name: host?.display_name ?? '' };
  }

  private async resolveHost(actor: LinkActor, requested: string | undefined): Promise<string> {
    if (actor.isAdmin && actor.userId === null) {
      // The API key: it has no user of its own, so it names the host.
      if (requested === undefined) throw fieldError('/host_id', 'required when creating a link with the API key', 'host_id is required with the API key');
    } else if (!actor.userId || actor.role === null || !HOST_ROLES.has(actor.role)) {
      throw new AppError('forbidden', 'Only hosts and admins can create links');
    } else if (requested !== undefined && requested !== actor.userId && !actor.isAdmin) {
      throw new AppError('forbidden', 'Only the API key or an admin may create a link for another host');
    }
    const hostId = requested ?? actor.userId!;
    if (requested === undefined) return hostId;
    const host = await this.db.selectFrom('users').select(['id', 'role']).where('id', '=', hostId).executeTakeFirst();
    if (!host) throw fieldError('/host_id', `user ${hostId} does not exist`, 'Unknown host');
    if (!HOST_ROLES.has(host.role)) throw fieldError('/host_id', `user ${hostId} is not a host`, 'host_id must name a host');
    return hostId;
  }
}

/**
 * Host availability (README, "Paid link calls"): a host is available while it has a live user socket and has not
 * set itself unavailable (users.accepting_calls).
 */
export class HostAvailability {
  constructor(
    private readonly db: DbHandle,
    private readonly notifier: UserNotifier,
  ) {}

  withDb(db: DbHandle): HostAvailability {
    return new HostAvailability(db, this.notifier);
  }

  async isAvailable(hostId: string): Promise<boolean> {
    if (!this.notifier.isOnline(hostId)) return false;
    const row = await this.db.selectFrom('users').select('accepting_calls').where('id', '=', hostId).executeTakeFirst();
    return row?.accepting_calls === true;
  }

  async get(userId: string): Promise<AvailabilityDto> {
    const row = await this.db.selectFrom('users').select('accepting_calls').where('id', '=', userId).executeTakeFirst();
    if (!row) throw new AppError('not_found', `User ${userId} not found`);
    return this.toDto(userId, row.accepting_calls);
  }

  async set(userId: string, available: boolean): Promise<AvailabilityDto> {
    const row = await this.db.updateTable('users').set({ accepting_calls: available }).where('id', '=', userId).returning('accepting_calls').executeTakeFirst();
    if (!row) throw new AppError('not_found', `User ${userId} not found`);
    return this.toDto(userId, row.accepting_calls);
  }

  private toDto(userId: string, accepting: boolean): AvailabilityDto {
    return { available: accepting, online: this.notifier.isOnline(userId), accepting_calls: accepting };
  }
}
