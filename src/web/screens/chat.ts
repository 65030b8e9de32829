/**
 * The chat panel of the lobby (docs/api.md, "Chat"): conversations with unread badges, a thread with
 * typing and read state, file attachments, people to chat with or follow, and, for hosts, a
 * broadcast to followers. It opens the chat socket while the page is signed in; unread counts are
 * always the server's (the list is reloaded after each event that changes them).
 */
import type { ChatConversation, ChatMessage, ChatServerFrame, Upload } from '../../protocol/chat.ts';
import { ChatSocket } from '../chat-socket.ts';
import { $, Timeout, api, coalesced, h, isHost, showError, status } from '../page.ts';
import { store, watch } from '../store.ts';
import type { User } from '../api.ts';

interface ListEnvelope<T> {
  data: T[];
}

/** What the panel shows; `frames` logs every chat frame received (for the tests and the console). */
const chat = {
  socket: null as ChatSocket | null,
  conversations: [] as ChatConversation[],
  openId: null as string | null,
  messages: [] as ChatMessage[],
  /** Per conversation: the newest message the other participant is known to have read. */
  peerReadUpTo: new Map<string, string>(),
  frames: [] as ChatServerFrame[],
};

declare global {
  interface Window {
    callplaneChat: typeof chat;
  }
}

const typingShown = new Timeout();
let lastTypingSent = 0;
const TYPING_SHOWN_MS = 3000;
const TYPING_SEND_EVERY_MS = 1500;

const me = (): User | null => store.get().me;
const refreshList = coalesced(150, () => void loadConversations().catch(showError));

async function loadConversations(): Promise<void> {
  chat.conversations = (await api.request<ListEnvelope<ChatConversation>>('GET', '/v1/chat/conversations?per_page=100')).data;
  renderConversations();
}

function renderConversations(): void {
  const list = $('chat-conversations');
  list.replaceChildren();
  if (!chat.conversations.length) list.append(h('li', { 'data-testid': 'chat-no-conversations' }, 'No conversations yet.'));
  for (const c of chat.conversations) {
    const badge = h('span', { class: 'badge', 'data-testid': 'unread-badge' }, String(c.unread_count));
    badge.hidden = c.unread_count === 0;
    const item = h(
      'li',
      { 'data-testid': 'chat-conversation', 'data-conversation-id': c.id, 'data-peer-id': c.participant.id, 'data-unread': String(c.unread_count), ...(c.id === chat.openId ? { 'aria-current': 'true' } : {}) },
      h('strong', {}, c.participant.display_name),
      badge,
      h('small', {}, c.last_message ? (c.last_message.type === 'file' ? '📎 ' : '') + c.last_message.body : ''),
    );
    item.addEventListener('click', () => void openConversation(c.id).catch(showError));
    list.append(item);
  }
}

async function openConversation(id: string): Promise<void> {
  chat.openId = id;
  const page = await api.request<ListEnvelope<ChatMessage>>('GET', `/v1/chat/conversations/${id}/messages?per_page=50`);
  if (chat.openId !== id) return;
  chat.messages = page.data.reverse();
  $('chat-thread').hidden = false;
  $('chat-thread').dataset.conversationId = id;
  $('chat-thread-title').textContent = chat.conversations.find((c) => c.id === id)?.participant.display_name ?? '';
  $('chat-typing').hidden = true;
  renderMessages();
  renderConversations();
  markRead(id);
}

function markRead(id: string): void {
  if (!chat.socket?.send({ type: 'read', conversation_id: id })) void api.request('PUT', `/v1/chat/conversations/${id}/read`).then(refreshList, showError);
}

function renderMessages(): void {
  const list = $('chat-messages');
  list.replaceChildren();
  const readUpTo = chat.openId ? chat.peerReadUpTo.get(chat.openId) : undefined;
  for (const m of chat.messages) {
    const mine = m.sender_id === me()?.id;
    const item = h('li', { 'data-testid': 'chat-message', 'data-message-id': m.id, 'data-mine': String(mine), class: mine ? 'mine' : 'theirs' }, h('span', { 'data-testid': 'chat-message-body' }, m.body));
    if (m.type === 'file' && m.file_url) {
      const download = h('button', { type: 'button', 'data-testid': 'chat-file-download', 'data-file-name': m.file_name ?? 'file' }, `📎 ${m.file_name ?? 'file'} (${m.file_size ?? '?'} bytes)`);
      download.addEventListener('click', () => void downloadFile(m).catch(showError));
      item.append(download);
    }
    if (mine) item.append(h('small', { 'data-testid': 'chat-read-state' }, readUpTo !== undefined && m.id <= readUpTo ? 'Read' : 'Sent'));
    list.append(item);
  }
  list.scrollTop = list.scrollHeight;
}

/** The file_url answers a participant with a redirect to a signed URL; the bytes become a download. */
async function downloadFile(message: ChatMessage): Promise<void> {
  const response = await fetch(message.file_url!, { headers: { authorization: `Bearer ${api.token}` } });
  if (!response.ok) throw new Error(`the file answered ${response.status}`);
  const url = URL.createObjectURL(await response.blob());
  const link = h('a', { href: url, download: message.file_name ?? 'file' });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function onFrame(frame: ChatServerFrame): void {
  chat.frames.push(frame);
  const self = me()?.id;
  switch (frame.type) {
    case 'new_message': {
      const { message } = frame;
      if (message.conversation_id === chat.openId) {
        if (!chat.messages.some((m) => m.id === message.id)) chat.messages = [...chat.messages, message].sort((a, b) => (a.id < b.id ? -1 : 1));
        if (message.sender_id !== self) {
          $('chat-typing').hidden = true;
          markRead(message.conversation_id);
        }
        renderMessages();
      }
      refreshList();
      break;
    }
    case 'typing':
      if (frame.conversation_id === chat.openId && frame.user_id !== self) {
        const name = chat.conversations.find((c) => c.id === frame.conversation_id)?.participant.display_name ?? 'Someone';
        $('chat-typing').textContent = `${name} is typing…`;
        $('chat-typing').hidden = false;
        typingShown.set(TYPING_SHOWN_MS, () => ($('chat-typing').hidden = true));
      }
      break;
    case 'read_receipt':
      if (frame.user_id !== self) {
        // The other side read everything there is: in the open thread, up to its newest message.
        const newest = frame.conversation_id === chat.openId ? chat.messages.at(-1)?.id : undefined;
        if (newest) chat.peerReadUpTo.set(frame.conversation_id, newest);
        if (frame.conversation_id === chat.openId) renderMessages();
      }
      refreshList();
      break;
    case 'error':
      status(`Chat: ${frame.message} (${frame.code})`, true);
      break;
  }
}

async function send(): Promise<void> {
  const id = chat.openId;
  if (!id) return;
  const input = $<HTMLInputElement>('chat-input');
  const fileInput = $<HTMLInputElement>('chat-file');
  const file = fileInput.files?.[0];
  const body = input.value.trim();
  if (file) {
    status(`Uploading ${file.name}…`);
    const { upload } = await api.request<{ upload: Upload }>('POST', '/v1/chat/uploads', { file_name: file.name, file_size: file.size, file_type: file.type || 'application/octet-stream' });
    const put = await fetch(upload.upload_url, { method: 'PUT', headers: upload.headers, body: file });
    if (!put.ok) throw new Error(`the upload answered ${put.status}`);
    await api.request('POST', `/v1/chat/conversations/${id}/messages`, { type: 'file', body, file_url: upload.file_url, file_name: file.name, file_size: file.size, file_type: upload.headers['Content-Type'] });
    fileInput.value = '';
    input.value = '';
    status(`Sent ${file.name}`);
    return;
  }
  if (!body) return;
  const clientId = crypto.randomUUID();
  if (!chat.socket?.send({ type: 'message', conversation_id: id, body, client_id: clientId })) await api.request('POST', `/v1/chat/conversations/${id}/messages`, { body, client_id: clientId });
  input.value = '';
}

async function loadPeople(): Promise<void> {
  const list = $('chat-people');
  list.replaceChildren();
  let users: User[] = [];
  try {
    users = (await api.request<ListEnvelope<User>>('GET', '/v1/demo/users')).data;
  } catch {
    list.append(h('li', {}, 'The demo user list is off on this server.'));
    return;
  }
  for (const user of users.filter((u) => u.id !== me()?.id)) {
    const talk = h('button', { type: 'button', 'data-testid': 'chat-with' }, 'Chat');
    talk.addEventListener('click', () => {
      api
        .request<ChatConversation>('POST', '/v1/chat/conversations', { user_id: user.id })
        .then(async (c) => {
          await loadConversations();
          await openConversation(c.id);
        })
        .catch(showError);
    });
    const follow = h('button', { type: 'button', 'data-testid': 'chat-follow' }, 'Follow');
    follow.addEventListener('click', () => void api.request('POST', `/v1/hosts/${user.id}/follow`).then(() => status(`Following ${user.display_name}`), showError));
    list.append(h('li', { 'data-testid': 'chat-person', 'data-user-id': user.id }, h('span', {}, user.display_name), talk, follow));
  }
}

function start(user: User): void {
  chat.socket?.stop();
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  chat.socket = new ChatSocket(`${scheme}://${location.host}/v1/chat/ws?token=${encodeURIComponent(api.token ?? '')}`, onFrame, (open) => {
    $('chat-connection').dataset.connected = String(open);
    if (open) refreshList();
  });
  $('chat-broadcast-form').hidden = !isHost(user);
  void Promise.all([loadConversations(), loadPeople()]).catch(showError);
}

function stop(): void {
  chat.socket?.stop();
  chat.socket = null;
  chat.conversations = [];
  chat.messages = [];
  chat.openId = null;
  $('chat-thread').hidden = true;
  renderConversations();
}

export function mountChat(): void {
  window.callplaneChat = chat;
  watch(store, (state) => state.me, (user) => (user ? start(user) : stop()));
  $('chat-form').addEventListener('submit', (event) => {
    event.preventDefault();
    send().catch(showError);
  });
  $('chat-input').addEventListener('input', () => {
    const now = Date.now();
    if (!chat.openId || now - lastTypingSent < TYPING_SEND_EVERY_MS) return;
    lastTypingSent = now;
    chat.socket?.send({ type: 'typing', conversation_id: chat.openId });
  });
  $('chat-refresh-people').addEventListener('click', () => void loadPeople().catch(showError));
  $('chat-broadcast-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $<HTMLInputElement>('chat-broadcast-body');
    const body = input.value.trim();
    if (!body) return;
    api
      .request<{ broadcast: { recipients: number } }>('POST', '/v1/chat/broadcast', { body })
      .then(({ broadcast }) => {
        input.value = '';
        $('chat-broadcast-result').textContent = `Sent to ${broadcast.recipients} follower${broadcast.recipients === 1 ? '' : 's'}`;
      })
      .catch(showError);
  });
}
