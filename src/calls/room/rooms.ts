import { Type, type Static } from '@sinclair/typebox';
import { sql } from 'kysely';
import type { DbHandle } from '../../db/database.ts';
import type { RoomRow } from '../../db/schema.ts';
import { AppError } from '../../shared/errors.ts';
import { newId } from '../../shared/ids.ts';
import { Strict, Ulid } from '../../shared/schema.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Actor } from '../ports.ts';

/** Power levels: 0 member, 50 moderator, 100 admin (README, "Room calls"). */
export const POWER = { member: 0, moderator: 50, admin: 100 } as const;
const Power = Type.Integer({ minimum: 0, maximum: 100 });

export const MemberInput = Strict({ user_id: Ulid, power: Type.Optional(Power) });
export const CreateRoomBody = Strict({ name: Type.String({ minLength: 1, maxLength: 200 }), members: Type.Optional(Type.Array(MemberInput, { maxItems: 500 })) });
export type CreateRoomInput = Static<typeof CreateRoomBody>;

export const RoomSchema = Type.Object(
  {
    id: Ulid,
    name: Type.String(),
    created_by: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.String({ format: 'date-time' }),
    members: Type.Array(Type.Object({ user_id: Type.String(), display_name: Type.String(), power: Power })),
    active_call_id: Type.Union([Type.String(), Type.Null()]),
  },
  { title: 'Room' },
);
export type RoomDto = Static<typeof RoomSchema>;

export class RoomService {
  constructor(
    private readonly db: DbHandle,
    private readonly clock: Clock,
  ) {}

  withDb(db: DbHandle): RoomService {
    return new RoomService(db, this.clock);
  }

  async create(actor: Actor, input: CreateRoomInput): Promise<RoomDto> {
    const members = new Map<string, number>();
    for (const member of input.members ?? []) members.set(member.user_id, member.power ?? POWER.member);
    if (actor.userId) members.set(actor.userId, POWER.admin);
    if (members.size === 0) throw new AppError('validation_failed', 'A room needs at least one member', { errors: [{ in: 'body', path: '/members', message: 'empty' }] });
    await this.assertUsersExist([...members.keys()]);
    const id = newId();
    await this.db.insertInto('rooms').values({ id, name: input.name, created_by: actor.userId, created_at: this.clock.now() }).execute();
    await this.db
      .insertInto('room_members')
      .values([...members].map(([userId, power]) => ({ room_id: id, user_id: userId, power })))
      .execute();
    return this.get(actor, id);
  }

  async find(roomId: string): Promise<RoomRow | undefined> {
    return this.db.selectFrom('rooms').selectAll().where('id', '=', roomId).executeTakeFirst();
  }

  /** The member's power, or null when not a member. */
  async powerOf(roomId: string, userId: string | null): Promise<number | null> {
    if (!userId) return null;
    const row = await this.db.selectFrom('room_members').select('power').where('room_id', '=', roomId).where('user_id', '=', userId).executeTakeFirst();
    return row ? row.power : null;
  }

  async memberIds(roomId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('room_members').select('user_id').where('room_id', '=', roomId).execute();
    return rows.map((r) => r.user_id);
  }

  async get(actor: Actor, roomId: string): Promise<RoomDto> {
    const room = await this.find(roomId);
    if (!room) throw new AppError('not_found', `Room ${roomId} not found`);
    if (!actor.isAdmin && (await this.powerOf(roomId, actor.userId)) === null) throw new AppError('forbidden', 'You are not a member of this room');
    return this.toDto(room);
  }

  async listFor(userId: string, page: number, perPage: number): Promise<{ rows: RoomDto[]; total: number }> {
    const base = this.db.selectFrom('rooms').innerJoin('room_members', 'room_members.room_id', 'rooms.id').where('room_members.user_id', '=', userId);
    const [rooms, count] = await Promise.all([
      base.selectAll('rooms').orderBy('rooms.id', 'desc').limit(perPage).offset((page - 1) * perPage).execute(),
      base.select(sql<number>`count(*)::int`.as('total')).executeTakeFirstOrThrow(),
    ]);
    return { rows: await Promise.all(rooms.map((room) => this.toDto(room))), total: count.total };
  }

  async rename(actor: Actor, roomId: string, name: string): Promise<RoomDto> {
    await this.authorizeOwner(actor, roomId);
    await this.db.updateTable('rooms').set({ name }).where('id', '=', roomId).execute();
    return this.get(actor, roomId);
  }

  /** Deletes a room with no call in progress (end it first); its calls' history stays. */
  async delete(actor: Actor, roomId: string): Promise<void> {
    await this.authorizeOwner(actor, roomId);
    const live = await this.db.selectFrom('calls').select('id').where('room_id', '=', roomId).where('ended_at', 'is', null).executeTakeFirst();
    if (live) throw new AppError('invalid_state', 'The room has a call in progress; end it first', { call_id: live.id });
    await this.db.updateTable('calls').set({ room_id: null }).where('room_id', '=', roomId).execute();
    await this.db.deleteFrom('rooms').where('id', '=', roomId).execute();
  }

  async addMember(actor: Actor, roomId: string, input: Static<typeof MemberInput>): Promise<RoomDto> {
    const power = input.power ?? POWER.member;
    await this.authorizeManage(actor, roomId, power);
    await this.assertUsersExist([input.user_id]);
    await this.db
      .insertInto('room_members')
      .values({ room_id: roomId, user_id: input.user_id, power })
      .onConflict((oc) => oc.columns(['room_id', 'user_id']).doUpdateSet({ power }))
      .execute();
    return this.get(actor, roomId);
  }

  async removeMember(actor: Actor, roomId: string, userId: string): Promise<RoomDto> {
    const targetPower = await this.powerOf(roomId, userId);
    if (targetPower === null) throw new AppError('not_found', 'That user is not a member of this room');
    if (actor.userId !== userId) await this.authorizeManage(actor, roomId, targetPower + 1);
    await this.db.deleteFrom('room_members').where('room_id', '=', roomId).where('user_id', '=', userId).execute();
    return this.get({ ...actor, isAdmin: true }, roomId);
  }

  /** Moderators (≥ 50) manage members below their own power; admins and the API key manage anyone. */
  private async authorizeManage(actor: Actor, roomId: string, targetPower: number): Promise<void> {
    if (!(await this.find(roomId))) throw new AppError('not_found', `Room ${roomId} not found`);
    if (actor.isAdmin) return;
    const power = await this.powerOf(roomId, actor.userId);
    if (power === null) throw new AppError('forbidden', 'You are not a member of this room');
    if (power < POWER.moderator || (targetPower > power && power < POWER.admin)) {
      throw new AppError('forbidden', 'Managing members needs power ≥ 50, and at least the power you grant');
    }
  }

  /** Renaming and deleting need power 100 in the room, or an admin. */
  private async authorizeOwner(actor: Actor, roomId: string): Promise<void> {
    if (!(await this.find(roomId))) throw new AppError('not_found', `Room ${roomId} not found`);
    if (actor.isAdmin) return;
    const power = await this.powerOf(roomId, actor.userId);
    if (power === null) throw new AppError('forbidden', 'You are not a member of this room');
    if (power < POWER.admin) throw new AppError('forbidden', 'Renaming or deleting a room needs power 100');
  }

  private async assertUsersExist(userIds: string[]): Promise<void> {
    const found = await this.db.selectFrom('users').select('id').where('id', 'in', userIds).execute();
    const missing = userIds.filter((id) => !found.some((row) => row.id === id));
    if (missing.length > 0) {
      throw new AppError('validation_failed', 'Unknown users', { errors: missing.map((id) => ({ in: 'body', path: '/members', message: `user ${id} does not exist` })) });
    }
  }

  private async toDto(room: RoomRow): Promise<RoomDto> {
    const [members, live] = await Promise.all([
      this.db
        .selectFrom('room_members')
        .innerJoin('users', 'users.id', 'room_members.user_id')
        .select(['room_members.user_id', 'users.display_name', 'room_members.power'])
        .where('room_members.room_id', '=', room.id)
        .orderBy('room_members.power', 'desc')
        .orderBy('room_members.user_id')
        .execute(),
      this.db.selectFrom('calls').select('id').where('room_id', '=', room.id).where('ended_at', 'is', null).executeTakeFirst(),
    ]);
    return {
      id: room.id,
      name: room.name,
      created_by: room.created_by,
      created_at: room.created_at.toISOString(),
      members: members.map((m) => ({ user_id: m.user_id, display_name: m.display_name, power: m.power })),
      active_call_id: live?.id ?? null,
    };
  }
}

/** Tenant-wide settings (one tenant per deployment). */
export class SettingsService {
  constructor(private readonly db: DbHandle) {}

  async recordingEnabled(): Promise<boolean> {
    const row = await this.db.selectFrom('tenant_settings').select('value').where('key', '=', 'recording_enabled').executeTakeFirst();
    return row ? row.value === true : true;
  }

  async setRecordingEnabled(enabled: boolean): Promise<void> {
    await this.db
      .insertInto('tenant_settings')
      .values({ key: 'recording_enabled', value: JSON.stringify(enabled), updated_at: new Date() })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value: JSON.stringify(enabled), updated_at: new Date() }))
      .execute();
  }
}
