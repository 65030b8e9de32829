/**
 * Sign-in and sign-out: demo login by name (optionally as a host) or a pasted access token. A
 * signed-in page keeps its token in this tab's session and listens on the user socket.
 */
import { ApiError, type User } from '../api.ts';
import { $, TOKEN_KEY, api, isHost, openUserSocket, showError, showScreen, status } from '../page.ts';
import { store } from '../store.ts';
import { loadHostTools, loadMembers, loadRooms, onUserEvent, renderAvailability } from './lobby.ts';
import { inPaidSession } from './meter.ts';
import { refreshOnlineSoon } from './videochat.ts';

export async function signIn(token: string, user?: User): Promise<void> {
  api.token = token;
  let me: User;
  try {
    me = user ?? (await api.me());
  } catch (error) {
    api.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    showScreen('signin');
    throw error;
  }
  store.update({ me });
  sessionStorage.setItem(TOKEN_KEY, token);
  $('me').textContent = `Signed in as ${me.display_name}`;
  $('me').dataset.userId = me.id;
  showScreen('lobby');
  status('Signed in');
  store.get().userSocket?.stop();
  const userSocket = openUserSocket(token, onUserEvent, (connected) => {
    if (connected) refreshOnlineSoon();
    // A host is available only while this socket is up: show what guests see.
    if (isHost(store.get().me)) api.availability().then(renderAvailability, (error: unknown) => console.warn('availability failed', error));
  });
  store.update({ userSocket });
  await Promise.all([loadRooms(), loadMembers(), loadHostTools()]);
}

function signOut(): void {
  const { session, paid, userSocket } = store.get();
  // A paid call has no "leave": it ends (and is billed) for both.
  if (session && !session.finished) void (inPaidSession() ? session.end() : session.leave()).catch(() => undefined);
  paid?.meter.stop();
  userSocket?.stop();
  sessionStorage.removeItem(TOKEN_KEY);
  api.token = null;
  store.update({ paid: null, userSocket: null, me: null, invites: new Map(), paidIncoming: new Map(), links: [] });
  $('me').textContent = '';
  showScreen('signin');
  status('Signed out');
}

export function mountSignin(): void {
  $('login-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const name = $<HTMLInputElement>('login-name').value.trim();
    if (!name) return;
    const asHost = $<HTMLInputElement>('login-host').checked;
    status('Signing in…');
    api.token = null;
    api
      .demoLogin(name, asHost ? 'host' : undefined)
      .then((answer) => signIn(answer.access_token, answer.user))
      .catch((error: unknown) => {
        if (asHost && error instanceof ApiError && error.code === 'validation_failed') {
          status('This server\u2019s demo login cannot create hosts (it refused role "host"): sign in with a host\u2019s access token instead', true);
          return;
        }
        showError(error);
      });
  });

  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $<HTMLInputElement>('token-input').value.trim();
    if (token) signIn(token).catch(showError);
  });

  $('sign-out').addEventListener('click', signOut);
}
