/**
 * Moderation over signaling (docs/api.md, "Direct videochat (user socket)", "Roles over
 * signaling"): owners and panelists change another participant's roles, mute or remove it. Owners
 * cannot be demoted, muted or removed, so the host and guest of a paid call (both owners) cannot
 * act on each other. A demotion takes effect at once: the peer hears permissions_changed and its
 * producers close (everyone hears producer_closed).
 */
import { SignalCloseCode, type Permissions, type RequestPayload, type ResponsePayloads } from '../protocol/signaling.ts';
import { applyRoleChange, canModerate, canProduce, roles, type VideochatPermissions } from '../protocol/videochat.ts';
import { AppError } from '../shared/errors.ts';
import type { Peer } from './peer.ts';
import type { RequestContext } from './requests.ts';

const ROLE_KEYS = ['isModerator', 'isOwner', 'isPanelist', 'isPresenter', 'isCoPresenter', 'isPromoted', 'isParticipant', 'isListener'] as const;

/** Every role flag of a permission set (flags an identity lacks are false). */
export function rolesOf(p: Permissions): VideochatPermissions {
  const full = roles('participant');
  for (const key of ROLE_KEYS) full[key] = p[key] === true;
  return full;
}

/** The peer the moderator acts on: not itself, present, and not an owner. */
function targetOf(ctx: RequestContext, participantId: string, what: string): Peer {
  if (!canModerate(rolesOf(ctx.peer.identity.permissions))) throw new AppError('forbidden', `Only owners and panelists may ${what}`);
  if (participantId === ctx.peer.participantId) throw new AppError('invalid_state', `A participant cannot ${what} itself`);
  const target = ctx.session.peers.get(participantId);
  if (!target) throw new AppError('not_found', `No participant ${JSON.stringify(participantId)} in this call`);
  if (target.identity.permissions.isOwner) throw new AppError('forbidden', `An owner cannot be the target of ${what}`);
  return target;
}

export async function setPermissions(ctx: RequestContext, { participantId, permissions: change }: RequestPayload<'setPermissions'>): Promise<ResponsePayloads['setPermissions']> {
  const target = targetOf(ctx, participantId, 'change permissions');
  if (change.isPanelist !== undefined && !ctx.peer.identity.permissions.isOwner) throw new AppError('forbidden', 'Only owners may make or unmake panelists');
  const current = target.identity.permissions;
  const next = applyRoleChange(rolesOf(current), change);
  const permissions: Permissions = { ...next, canPublish: canProduce(next), canSubscribe: current.canSubscribe, canEndCall: current.canEndCall };
  target.identity = { ...target.identity, permissions };
  target.notify('permissions_changed', { permissions });
  if (!permissions.canPublish) {
    // Each close is announced by the producer's observer (producer_closed to the others).
    for (const { producer } of [...target.producers.values()]) producer.close();
  }
  ctx.session.emitSafe('permissionschanged', target.participantId, permissions);
  return { permissions };
}

export async function muteParticipant(ctx: RequestContext, { participantId, kind }: RequestPayload<'muteParticipant'>): Promise<Record<string, never>> {
  const target = targetOf(ctx, participantId, 'mute a participant');
  for (const { producer } of target.producers.values()) {
    if (producer.kind !== kind || producer.paused) continue;
    await producer.pause();
    // The muted peer hears it too: its own UI shows the track paused.
    ctx.session.broadcast('producer_paused', { participantId, producerId: producer.id });
  }
  ctx.session.emitSafe('producerschanged', participantId);
  return {};
}

export async function removeParticipant(ctx: RequestContext, { participantId }: RequestPayload<'removeParticipant'>): Promise<Record<string, never>> {
  const target = targetOf(ctx, participantId, 'remove a participant');
  ctx.session.remove(target, SignalCloseCode.removed, 'removed');
  return {};
}
