import { Type, type Static } from '@sinclair/typebox';
import { sql } from 'kysely';
import type { DbHandle } from '../db/database.ts';
import type { UserRole, UserRow, UserUpdate } from '../db/schema.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { formatMoney, parseMoney, CURRENCY_PATTERN } from '../shared/money.ts';
import type { Clock } from '../shared/clock.ts';
import { Strict, Ulid, DateTime } from '../shared/schema.ts';
import { UserCache } from './user-cache.ts';

const Role = Type.Union([Type.Literal('guest'), Type.Literal('user'), Type.Literal('host'), Type.Literal('admin')]);
const Name = (max: number) => Type.String({ minLength: 1, maxLength: max });
const Nullable = <T extends ReturnType<typeof Name>>(schema: T) => Type.Union([schema, Type.Null()]);

export const Avatar3dSchema = Strict({
  asset_id: Type.String({ maxLength: 200 }),
  asset_skins: Type.Optional(Type.Record(Type.String({ maxLength: 100 }), Type.String({ maxLength: 200 }))),
  avatar_url: Type.Optional(Type.String({ format: 'uri', maxLength: 2000 })),
  avatar_user_id: Type.Optional(Type.String({ maxLength: 200 })),
});

const editable = {
  display_name: Type.Optional(Name(100)),
  first_name: Type.Optional(Nullable(Name(100))),
  last_name: Type.Optional(Nullable(Name(100))),
  avatar_url: Type.Optional(Type.Union([Type.String({ format: 'uri', maxLength: 2000 }), Type.Null()])),
  privacy_mode: Type.Optional(Type.Union([Type.Literal(0), Type.Literal(1)])),
  company_name: Type.Optional(Nullable(Name(200))),
  company_title: Type.Optional(Nullable(Name(200))),
  avatar3d: Type.Optional(Type.Union([Avatar3dSchema, Type.Null()])),
  default_rate: Type.Optional(Type.Union([Type.String({ pattern: '^\\d{1,10}(\\.\\d{1,2})?$', description: 'per-minute rate, e.g. "2.00"' }), Type.Null()])),
  currency: Type.Optional(Type.Union([Type.String({ pattern: CURRENCY_PATTERN }), Type.Null()])),
  stripe_account_id: Type.Optional(Type.Union([Type.String({ pattern: '^acct_[A-Za-z0-9]+$' }), Type.Null()])),
};

export const CreateUserBody = Strict({ ...editable, display_name: Name(100), role: Type.Optional(Role) });
export const UpdateUserBody = Strict({ ...editable, role: Type.Optional(Role) });
export type CreateUserInput = Static<typeof CreateUserBody>;
export type UpdateUserInput = Static<typeof UpdateUserBody>;

export const UserSchema = Type.Object(
  {
    id: Ulid,
    role: Role,
    display_name: Type.String(),
    first_name: Type.Union([Type.String(), Type.Null()]),
    last_name: Type.Union([Type.String(), Type.Null()]),
    avatar_url: Type.Union([Type.String(), Type.Null()]),
    privacy_mode: Type.Integer(),
    company_name: Type.Union([Type.String(), Type.Null()]),
    company_title: Type.Union([Type.String(), Type.Null()]),
    avatar3d: Type.Optional(Type.Unknown()),
    default_rate: Type.Union([Type.String(), Type.Null()]),
    currency: Type.Union([Type.String(), Type.Null()]),
    stripe_account_id: Type.Union([Type.String(), Type.Null()]),
    created_at: DateTime,
    updated_at: DateTime,
  },
  { title: 'User' },
);
export type UserDto = Static<typeof UserSchema>;

export function toUserDto(row: UserRow): UserDto {
  return {
    id: row.id,
    role: row.role,
    display_name: row.display_name,
    first_name: row.first_name,
    last_name: row.last_name,
    avatar_url: row.avatar_url,
    privacy_mode: row.privacy_mode,
    company_name: row.company_name,
    company_title: row.company_title,
    ...(row.avatar3d ? { avatar3d: row.avatar3d } : {}), // omitted when empty, as in the videochat API
    default_rate: row.default_rate_minor === null ? null : formatMoney(row.default_rate_minor),
    currency: row.currency,
    stripe_account_id: row.stripe_account_id,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

/** The camelCase "User Simple" shape of the videochat handshake, used by the user WebSocket's videochat payloads. */
export function toUserSimple(row: UserRow): Record<string, unknown> {
  const avatar = row.avatar3d as { asset_id?: string; asset_skins?: Record<string, string>; avatar_url?: string; avatar_user_id?: string } | null;
  return {
    id: row.id,
    firstName: row.first_name ?? row.display_name,
    lastName: row.last_name ?? '',
    privacyMode: row.privacy_mode,
    avatar: row.avatar_url ?? '',
    ...(avatar ? { avatar3D: { assetId: avatar.asset_id, assetSkins: avatar.asset_skins ?? {}, avatarUrl: avatar.avatar_url ?? '', avatarUserId: avatar.avatar_user_id ?? '' } } : {}),
    companyName: row.company_name ?? '',
    companyTitle: row.company_title ?? '',
  };
}

function columnsFrom(input: UpdateUserInput): UserUpdate {
  const update: UserUpdate = {};
  const copy = ['display_name', 'first_name', 'last_name', 'avatar_url', 'privacy_mode', 'company_name', 'company_title', 'currency', 'stripe_account_id', 'role'] as const;
  for (const key of copy) if (input[key] !== undefined) (update as Record<string, unknown>)[key] = input[key];
  if (input.avatar3d !== undefined) update.avatar3d = input.avatar3d === null ? null : JSON.stringify(input.avatar3d);
  if (input.default_rate !== undefined) update.default_rate_minor = input.default_rate === null ? null : parseMoney(input.default_rate, 'default_rate');
  return update;
}

/** Users: created by the operator's backend (API key) or an admin; guests are created by guest links. */
export class UserService {
  /** Rows read for authentication and /v1/users/me (auth.user_cache_ttl_ms); this service keeps it current. */
  readonly cache: UserCache;

  constructor(
    private readonly db: DbHandle,
    private readonly clock: Clock,
    cache?: UserCache,
  ) {
    this.cache = cache ?? new UserCache(db, 0);
  }

  withDb(db: DbHandle): UserService {
    return new UserService(db, this.clock, this.cache);
  }

  /** The user as GET /v1/users/me shows it: from the cache, which this service invalidates on change. */
  async current(id: string): Promise<UserRow> {
    const row = await this.cache.get(id);
    if (!row) throw new AppError('not_found', `User ${id} not found`);
    return row;
  }

  /**
   * Refuses every access token of the user issued so far (to the second, so a token minted in the
   * same second as the revocation is refused too). Returns the revocation time.
   */
  async revokeTokens(id: string): Promise<Date> {
    const row = await this.db
      .updateTable('users')
      .set({ tokens_revoked_at: this.clock.now() })
      .where('id', '=', id)
      .returning('tokens_revoked_at')
      .executeTakeFirst();
    this.cache.invalidate(id);
    if (!row?.tokens_revoked_at) throw new AppError('not_found', `User ${id} not found`);
    return row.tokens_revoked_at;
  }

  async create(input: CreateUserInput): Promise<UserRow> {
    const now = this.clock.now();
    const row = await this.db
      .insertInto('users')
      .values({
        id: newId(),
        role: input.role ?? 'user',
        display_name: input.display_name,
        privacy_mode: 0,
        ...columnsFrom(input),
        created_at: now,
        updated_at: now,
      } as never)
      .returningAll()
      .executeTakeFirstOrThrow();
    return row;
  }

  async get(id: string): Promise<UserRow> {
    const row = await this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new AppError('not_found', `User ${id} not found`);
    return row;
  }

  async find(id: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async update(id: string, input: UpdateUserInput): Promise<UserRow> {
    const update = columnsFrom(input);
    const row = await this.db
      .updateTable('users')
      .set({ ...update, updated_at: this.clock.now() })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    this.cache.invalidate(id);
    if (!row) throw new AppError('not_found', `User ${id} not found`);
    return row;
  }

  async list(options: { page: number; perPage: number; role?: UserRole }): Promise<{ rows: UserRow[]; total: number }> {
    let query = this.db.selectFrom('users');
    if (options.role) query = query.where('role', '=', options.role);
    const [rows, count] = await Promise.all([
      query.selectAll().orderBy('id').limit(options.perPage).offset((options.page - 1) * options.perPage).execute(),
      query.select(sql<number>`count(*)::int`.as('total')).executeTakeFirstOrThrow(),
    ]);
    return { rows, total: count.total };
  }
}
