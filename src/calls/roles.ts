/**
 * Each participant's roles (docs/videochat.md, "Roles"), for every kind of call, and the
 * permissions the SFU enforces from them:
 * - room calls map room power: 100 owner, 50 panelist, anything lower a promoted participant;
 * - paid calls: host and guest are both owners of their own media (neither can act on the other);
 * - direct calls: the initiator is the owner; whoever accepts, is invited or merged is promoted.
 * Roles a moderator changed over signaling are kept in call_participants.permissions and win.
 */
import type { DbHandle } from '../db/database.ts';
import type { CallRow } from '../db/schema.ts';
import type { Permissions } from '../protocol/signaling.ts';
import { canProduce, roles, type VideochatPermissions } from '../protocol/videochat.ts';
import { POWER } from './room/rooms.ts';

export async function rolesOf(db: DbHandle, call: Pick<CallRow, 'kind' | 'room_id' | 'initiator_id'>, participant: { user_id: string; permissions: Record<string, boolean> | null }): Promise<VideochatPermissions> {
  if (participant.permissions) return { ...roles('participant'), ...participant.permissions } as VideochatPermissions;
  if (call.kind === 'paid') return roles('owner');
  if (call.kind === 'direct') return roles(call.initiator_id === participant.user_id ? 'owner' : 'promoted');
  if (!call.room_id) return roles('promoted');
  const member = await db.selectFrom('room_members').select('power').where('room_id', '=', call.room_id).where('user_id', '=', participant.user_id).executeTakeFirst();
  const power = member?.power ?? POWER.member;
  return roles(power >= POWER.admin ? 'owner' : power >= POWER.moderator ? 'panelist' : 'promoted');
}

/** The SFU's view: the roles, and whether they allow producing. */
export function permissionsFrom(r: VideochatPermissions, canEndCall: boolean): Permissions {
  return { ...r, canPublish: canProduce(r), canSubscribe: true, canEndCall };
}
