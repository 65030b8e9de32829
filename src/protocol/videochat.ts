/**
 * The direct videochat handshake on the user WebSocket (docs/api.md, "Direct videochat (user
 * socket)"): endpoint and event names, request schemas, answer shapes, error codes and roles,
 * exactly as the videochat handshake API names them, so an app written against it works unchanged.
 */
import { Type, type Static } from '@sinclair/typebox';

export const VideochatEndpoint = {
  requestDirect: 'videochat:requestDirectVideochat',
  invite: 'videochat:invite',
  accept: 'videochat:acceptVideochatRequest',
  decline: 'videochat:declineVideochatRequest',
  merge: 'videochat:mergeToVideochat',
} as const;

export const VideochatEvent = {
  requested: 'videochat:videochatRequested',
  directAccepted: 'videochat:directVideochatRequestAccepted',
  accepted: 'videochat:videochatAccepted',
  declined: 'videochat:videochatDeclined',
} as const;

/** Lobby helpers of this server (not in the handshake API): who is online, and changes to it. */
export const PresenceEndpoint = { onlineUsers: 'presence:onlineUsers' } as const;
export const PRESENCE_CHANGED_EVENT = 'presence.changed';

/** Integer error codes of the handshake; everything else uses the HTTP status as its code. */
export const VideochatErrorCode = { userNotFound: 1021, userUnavailable: 10011 } as const;

/** An unanswered request is declined this long after it was made. */
export const VIDEOCHAT_REQUEST_TTL_SECONDS = 30;

const Id = Type.String({ minLength: 1, maxLength: 64 });

export const RequestDirectData = Type.Object({ targetUser: Id }, { additionalProperties: false });
export const InviteData = Type.Object({ targetUser: Id, videochatId: Id }, { additionalProperties: false });
export const RequestIdData = Type.Object({ videochatRequestId: Id }, { additionalProperties: false });
export const MergeData = Type.Object({ videochatId: Id, videochatRequestId: Id }, { additionalProperties: false });
export const EmptyData = Type.Object({}, { additionalProperties: false });
export type RequestDirectData = Static<typeof RequestDirectData>;
export type InviteData = Static<typeof InviteData>;
export type RequestIdData = Static<typeof RequestIdData>;
export type MergeData = Static<typeof MergeData>;

/** "User Simple": unset strings are "", avatar3D is left out when empty. */
export interface UserSimple {
  id: string;
  firstName: string;
  lastName: string;
  privacyMode: number;
  avatar: string;
  avatar3D?: { assetId: string; assetSkins: Record<string, string>; avatarUrl: string; avatarUserId: string };
  companyName: string;
  companyTitle: string;
}

/** A participant's roles in a call. `isModerator` mirrors isOwner || isPanelist. */
export interface VideochatPermissions {
  isModerator: boolean;
  isOwner: boolean;
  isPanelist: boolean;
  isPresenter: boolean;
  isCoPresenter: boolean;
  isPromoted: boolean;
  isParticipant: boolean;
  isListener: boolean;
}

/** The roles a moderator may change with setPermissions (isOwner is fixed: owners cannot be demoted). */
export const RoleChange = Type.Object(
  {
    isPanelist: Type.Optional(Type.Boolean()),
    isPresenter: Type.Optional(Type.Boolean()),
    isCoPresenter: Type.Optional(Type.Boolean()),
    isPromoted: Type.Optional(Type.Boolean()),
    isListener: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type RoleChange = Static<typeof RoleChange>;

/** Named role sets: what each kind of call hands out (docs/videochat.md, "Roles"). */
export function roles(kind: 'owner' | 'panelist' | 'promoted' | 'participant' | 'listener'): VideochatPermissions {
  const none: VideochatPermissions = { isModerator: false, isOwner: false, isPanelist: false, isPresenter: false, isCoPresenter: false, isPromoted: false, isParticipant: false, isListener: false };
  switch (kind) {
    case 'owner':
      return { ...none, isModerator: true, isOwner: true, isParticipant: true, isPromoted: true };
    case 'panelist':
      return { ...none, isModerator: true, isPanelist: true, isParticipant: true, isPromoted: true };
    case 'promoted':
      return { ...none, isParticipant: true, isPromoted: true };
    case 'participant':
      return { ...none, isParticipant: true };
    case 'listener':
      return { ...none, isListener: true };
  }
}

/** Applies a change; isModerator follows, and a listener is neither promoted nor a presenter. */
export function applyRoleChange(current: VideochatPermissions, change: RoleChange): VideochatPermissions {
  const next = { ...current, ...change };
  if (change.isListener === true) Object.assign(next, { isPromoted: false, isPresenter: false, isCoPresenter: false, isPanelist: false, isParticipant: false });
  if (change.isListener === false || change.isPromoted || change.isPresenter || change.isCoPresenter || change.isPanelist) {
    next.isListener = false;
    next.isParticipant = true;
  }
  next.isModerator = next.isOwner || next.isPanelist;
  return next;
}

/** Listeners and unpromoted participants only receive. */
export function canProduce(p: VideochatPermissions): boolean {
  return !p.isListener && (p.isOwner || p.isPanelist || p.isPresenter || p.isCoPresenter || p.isPromoted);
}

/** Owners and panelists moderate (setPermissions, muteParticipant, removeParticipant, invite). */
export function canModerate(p: VideochatPermissions): boolean {
  return p.isOwner || p.isPanelist;
}

/** The answer to accept, and the data of directVideochatRequestAccepted: the receiver's own join ticket. */
export interface VideochatTicket {
  videochatId: string;
  videochatMode: 'videochat';
  videochatEngine: 'callplane';
  videochatAppId: string;
  videochatUrl: string;
  room: string;
  identity: string;
  uid: number;
  token: string;
  sharedSecret: string;
  user: UserSimple;
  permissions: VideochatPermissions;
  /** Not in the handshake API: every answer with a signaling token carries TURN credentials. */
  turn_credentials: unknown;
}

export interface VideochatRequestedData {
  videochatRequestId: string;
  user: UserSimple;
  participants: UserSimple[];
  counter: number;
}
