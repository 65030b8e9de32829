/**
 * What every screen of the demo page shares: the API client, the page's address, DOM helpers, the
 * status line and the screen switch.
 */
import type { UserEventEnvelope } from '../protocol/user-events.ts';
import { Api, ApiError, type User } from './api.ts';
import { pageLog, store, type Screen } from './store.ts';
import { UserSocket } from './user-socket.ts';

export const api = new Api();

export const TOKEN_KEY = 'callplane.token';

/**
 * `/?link=<short_code>` (or `/l/<short_code>`, the links' own `url`, should the server serve this page
 * there): this page is a guest's, for that link.
 */
export const guestCode = new URLSearchParams(location.search).get('link') ?? /^\/l\/([A-Za-z0-9_-]+)\/?$/.exec(location.pathname)?.[1] ?? null;

export const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from index.html`);
  return element as T;
};

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  element.append(...children);
  return element;
}

export function status(text: string, isError = false): void {
  $('status').textContent = text;
  $('status').dataset.error = String(isError);
  if (isError) pageLog.errors.push(text);
}

export function showError(error: unknown): void {
  const message = error instanceof ApiError ? `${error.message} (${error.code})` : error instanceof Error ? error.message : String(error);
  console.error(error);
  status(message, true);
}

export function showScreen(screen: Exclude<Screen, 'loading'>): void {
  store.update({ screen });
}

/** Shows the screen the store names (body[data-state] and one visible section). */
export function renderScreen(screen: Screen): void {
  document.body.dataset.state = screen;
  for (const section of ['signin', 'lobby', 'call', 'guest', 'summary'] as const) $(section).hidden = screen !== section;
  $('sign-out').hidden = screen === 'signin' || guestCode !== null;
}

export const isHost = (user: User | null): boolean => user?.role === 'host' || user?.role === 'admin';

/** Opens the user socket (invites and call changes) for `token`; `#presence` shows whether it is up. */
export function openUserSocket(token: string, onEvent: (envelope: UserEventEnvelope) => void, onConnection?: (connected: boolean) => void): UserSocket {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return new UserSocket(`${scheme}://${location.host}/v1/ws?token=${encodeURIComponent(token)}`, onEvent, (connected) => {
    $('presence').dataset.connected = String(connected);
    onConnection?.(connected);
  });
}

/**
 * Runs `task` once, `delayMs` after the first of a burst of calls: the several events that change
 * one list make one refresh.
 */
export function coalesced(delayMs: number, task: () => void): () => void {
  let timer: number | null = null;
  return () => {
    if (timer !== null) return;
    timer = window.setTimeout(() => {
      timer = null;
      task();
    }, delayMs);
  };
}

/** One pending timer: setting it again replaces the one pending. */
export class Timeout {
  private timer: number | null = null;

  set(delayMs: number, task: () => void): void {
    this.clear();
    this.timer = window.setTimeout(() => {
      this.timer = null;
      task();
    }, delayMs);
  }

  clear(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
