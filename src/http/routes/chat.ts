import { Type } from '@sinclair/typebox';
import type { BroadcastService, ChatActor, ChatService, FollowService, UploadService } from '../../chat/index.ts';
import { BroadcastSchema, ChatConversationSchema, ChatMessageSchema, FollowSchema, UploadSchema } from '../../protocol/chat.ts';
import { AppError } from '../../shared/errors.ts';
import { ListEnvelope, Strict, Ulid, paginate } from '../../shared/schema.ts';
import { defineRoute, ok, type AnyRoute, type Principal } from '../types.ts';

/** Chat acts for a user: the API key has no conversations (403). */
function chatActor(principal: Principal | null): ChatActor {
  if (principal?.kind !== 'user') throw new AppError('forbidden', 'Chat needs a user access token, not the API key');
  return { userId: principal.userId, role: principal.role };
}

const IdParams = Strict({ id: Ulid });
const Page = (perPageDefault: number) => ({
  page: Type.Optional(Type.Integer({ minimum: 1, default: 1 })),
  per_page: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: perPageDefault })),
});
const MESSAGES_PER_PAGE = 50;
const CONVERSATIONS_PER_PAGE = 20;
const FileName = Type.String({ minLength: 1, maxLength: 255, pattern: '^[^\\u0000-\\u001f\\u007f/\\\\]+$' });
const MimeType = Type.String({ minLength: 3, maxLength: 255, pattern: '^[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+$' });

export interface ChatRouteDeps {
  chat: ChatService;
  uploads: UploadService;
  follows: FollowService;
  broadcasts: BroadcastService;
  maxMessageChars: number;
}

/** Chat over REST (docs/api.md, "Chat"); single objects are answered bare, not wrapped (the chat API's documented shapes). */
export function chatRoutes(deps: ChatRouteDeps): AnyRoute[] {
  const { chat, uploads, follows, broadcasts } = deps;
  const Body = Type.String({ maxLength: deps.maxMessageChars });
  return [
    defineRoute({
      method: 'get', path: '/v1/chat/conversations', summary: 'My conversations, latest activity first, with the other participant, the last message and my unread count', tags: ['chat'], auth: 'user',
      query: Strict(Page(CONVERSATIONS_PER_PAGE)),
      responses: { 200: { description: 'A page of conversations', schema: ListEnvelope(ChatConversationSchema) } },
      handler: async ({ principal, query }) => {
        const page = query.page ?? 1;
        const perPage = query.per_page ?? CONVERSATIONS_PER_PAGE;
        const { rows, total } = await chat.listConversations(chatActor(principal), page, perPage);
        return ok(paginate(rows, page, perPage, total));
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/chat/conversations', summary: 'Get or create the direct conversation with another user (201 created, 200 existing)', tags: ['chat'], auth: 'user',
      body: Strict({ user_id: Ulid }),
      responses: { 200: { description: 'The existing conversation', schema: ChatConversationSchema }, 201: { description: 'Created', schema: ChatConversationSchema }, 404: { description: 'not_found: no such user' } },
      handler: async ({ principal, body }) => {
        const { conversation, created } = await chat.openConversation(chatActor(principal), body.user_id);
        return ok(conversation, created ? 201 : 200);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/chat/conversations/{id}/messages', summary: 'Messages, newest first: by page, or before=<message id> for pages that stay put while messages arrive', tags: ['chat'], auth: 'user',
      params: IdParams, query: Strict({ ...Page(MESSAGES_PER_PAGE), before: Type.Optional(Ulid) }),
      responses: { 200: { description: 'A page of messages', schema: ListEnvelope(ChatMessageSchema) }, 403: { description: 'forbidden: not a participant' }, 404: { description: 'not_found' } },
      handler: async ({ principal, params, query }) => {
        const page = query.page ?? 1;
        const perPage = query.per_page ?? MESSAGES_PER_PAGE;
        const { rows, total } = await chat.listMessages(chatActor(principal), params.id, { page, perPage, ...(query.before === undefined ? {} : { before: query.before }) });
        return ok(paginate(rows, page, perPage, total));
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/chat/conversations/{id}/messages', summary: 'Send a text or file message (delivered as new_message on the chat socket)', tags: ['chat'], auth: 'user',
      params: IdParams,
      body: Strict({
        body: Body,
        type: Type.Optional(Type.Union([Type.Literal('text'), Type.Literal('file')], { default: 'text' })),
        file_url: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
        file_name: Type.Optional(FileName),
        file_size: Type.Optional(Type.Integer({ minimum: 0 })),
        file_type: Type.Optional(MimeType),
        client_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
      }),
      responses: { 201: { description: 'The stored message', schema: ChatMessageSchema }, 403: { description: 'forbidden: not a participant, or no waiting/active call with this host' }, 404: { description: 'not_found' } },
      handler: async ({ principal, params, body }) => ok(await chat.send(chatActor(principal), params.id, body), 201),
    }),
    defineRoute({
      method: 'put', path: '/v1/chat/conversations/{id}/read', summary: 'Mark every message of the conversation read (read_receipt to both participants)', tags: ['chat'], auth: 'user',
      params: IdParams,
      responses: { 204: { description: 'Read' }, 403: { description: 'forbidden' }, 404: { description: 'not_found' } },
      handler: async ({ principal, params }) => {
        await chat.markRead(chatActor(principal), params.id);
        return { status: 204 };
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/chat/broadcast', summary: 'A message to every follower (hosts and admins); delivered in the background', tags: ['chat'], auth: 'user',
      body: Strict({ body: Type.String({ minLength: 1, maxLength: deps.maxMessageChars }) }),
      responses: { 201: { description: 'Accepted; recipients: the followers now', schema: Type.Object({ broadcast: BroadcastSchema }) }, 403: { description: 'forbidden: not a host or admin' } },
      handler: async ({ principal, body }) => ok({ broadcast: await broadcasts.create(chatActor(principal), body.body) }, 201),
    }),
    defineRoute({
      method: 'post', path: '/v1/chat/uploads', summary: 'Declare a file: a signed PUT URL for its bytes and the file_url to send', tags: ['chat'], auth: 'user',
      body: Strict({ file_name: FileName, file_size: Type.Integer({ minimum: 1 }), file_type: MimeType }),
      responses: { 201: { description: 'Where to PUT the bytes', schema: Type.Object({ upload: UploadSchema }) }, 400: { description: 'validation_failed: type not allowed' }, 413: { description: 'payload_too_large: over chat.max_file_bytes' } },
      handler: async ({ principal, body, baseUrl }) => ok({ upload: await uploads.create(chatActor(principal).userId, body, baseUrl) }, 201),
    }),
    defineRoute({
      method: 'get', path: '/v1/chat/files/{id}', summary: 'A chat file: a redirect to a short-lived signed URL, for the conversation\'s participants only', tags: ['chat'], auth: 'user',
      params: IdParams,
      responses: { 302: { description: 'To the file' }, 401: { description: 'unauthorized' }, 403: { description: 'forbidden: not a participant' }, 404: { description: 'not_found' } },
      handler: async ({ principal, params }) => ({ status: 302, headers: { location: await uploads.downloadUrl(chatActor(principal).userId, params.id), 'cache-control': 'no-store' } }),
    }),
    defineRoute({
      method: 'post', path: '/v1/hosts/{id}/follow', summary: 'Follow a host (201; 200 when already following): its broadcasts reach you', tags: ['chat'], auth: 'user',
      params: IdParams,
      responses: { 200: { description: 'Already following', schema: Type.Object({ follow: FollowSchema }) }, 201: { description: 'Following', schema: Type.Object({ follow: FollowSchema }) }, 404: { description: 'not_found: no such host' } },
      handler: async ({ principal, params }) => {
        const { follow, created } = await follows.follow(chatActor(principal).userId, params.id);
        return ok({ follow }, created ? 201 : 200);
      },
    }),
    defineRoute({
      method: 'delete', path: '/v1/hosts/{id}/follow', summary: 'Stop following a host', tags: ['chat'], auth: 'user',
      params: IdParams,
      responses: { 204: { description: 'Not following' } },
      handler: async ({ principal, params }) => {
        await follows.unfollow(chatActor(principal).userId, params.id);
        return { status: 204 };
      },
    }),
  ];
}
