import type { ColumnType, Insertable, Selectable, Updateable } from 'kysely';

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type CreatedAt = ColumnType<Date, Date | string | undefined, never>;

export type UserRole = 'guest' | 'user' | 'host' | 'admin';

export interface UsersTable {
  id: string;
  role: UserRole;
  display_name: string;
  first_name: string | null;
  last_name: string | null;
  avatar_url: string | null;
  privacy_mode: number;
  company_name: string | null;
  company_title: string | null;
  avatar3d: ColumnType<Record<string, unknown> | null, string | null, string | null>;
  /** Hosts: default per-minute rate in minor units, and its currency. */
  default_rate_minor: number | null;
  currency: string | null;
  stripe_account_id: string | null;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface IdempotencyKeysTable {
  caller: string;
  key: string;
  method: string;
  path: string;
  request_hash: string;
  state: 'in_progress' | 'done';
  response_status: number | null;
  response_body: string | null;
  created_at: CreatedAt;
  expires_at: Timestamp;
}

export interface DB {
  users: UsersTable;
  idempotency_keys: IdempotencyKeysTable;
}

export type UserRow = Selectable<UsersTable>;
export type NewUserRow = Insertable<UsersTable>;
export type UserUpdate = Updateable<UsersTable>;
