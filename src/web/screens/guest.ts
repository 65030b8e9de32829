/**
 * The guest's side of a link (`/?link=<short_code>`): the host, rate and billing window from the
 * public link, the host's availability kept current, then pay (a test card) and call.
 */
import { Api, ApiError, type PublicLink } from '../api.ts';
import { rateText, windowText } from '../paid.ts';
import { $, Timeout, api, openUserSocket, showScreen, status } from '../page.ts';
import { store } from '../store.ts';
import { onUserEvent } from './lobby.ts';
import { openPaidSession } from './meter.ts';

/** Until the guest pays, the link is reloaded this often to keep the host's availability current. */
const PUBLIC_LINK_REFRESH_MS = 5000;

const publicLinkRefresh = new Timeout();

export async function loadPublicLink(code: string): Promise<void> {
  publicLinkRefresh.clear();
  let publicLink: PublicLink;
  try {
    publicLink = await new Api().publicLink(code);
  } catch (error) {
    store.update({ publicLink: null });
    $('guest-link').hidden = true;
    $('guest-form').hidden = true;
    guestError(error instanceof ApiError && (error.code === 'link_not_found' || error.code === 'validation_failed') ? 'This link does not exist or has expired.' : error);
    return;
  }
  store.update({ publicLink });
  renderPublicLink(publicLink);
  publicLinkRefresh.set(PUBLIC_LINK_REFRESH_MS, () => {
    if (store.get().screen === 'guest') void loadPublicLink(code);
  });
}

function renderPublicLink(link: PublicLink): void {
  $('guest-link').hidden = false;
  $('guest-host').textContent = link.host.display_name;
  $('guest-rate').textContent = rateText(link);
  $('guest-rate').dataset.value = link.rate_per_minute;
  $('guest-window').textContent = windowText(link.window_size_minutes);
  $('guest-window').dataset.value = String(link.window_size_minutes);
  $('guest-available').textContent = link.exhausted ? 'This link has been used up' : link.available ? 'Available now' : 'Not available right now';
  $('guest-available').dataset.available = String(link.available && !link.exhausted);
  $('guest-form').hidden = link.exhausted;
}

function guestError(error: unknown): void {
  let message: string;
  if (typeof error === 'string') message = error;
  else if (error instanceof ApiError && error.code === 'payment_failed') message = `Payment failed: ${error.message.replace(/\.?$/, '.')} Try another card.`;
  else if (error instanceof ApiError && error.code === 'host_unavailable') message = 'The host is not available right now: try again later.';
  else if (error instanceof ApiError && error.code === 'link_exhausted') message = 'This link has been used up.';
  else message = error instanceof ApiError ? `${error.message} (${error.code})` : error instanceof Error ? error.message : String(error);
  $('guest-error').textContent = message;
  $('guest-error').hidden = false;
  if (error instanceof ApiError) $('guest-error').dataset.code = error.code;
  else delete $('guest-error').dataset.code;
  status(message, true);
}

async function payAndCall(code: string): Promise<void> {
  const name = $<HTMLInputElement>('guest-name').value.trim();
  const card = $<HTMLSelectElement>('guest-card').value;
  if (!name) return;
  $('guest-error').hidden = true;
  status('Placing the payment hold…');
  let { guest } = store.get();
  if (!guest || guest.name !== name) {
    const answer = await new Api().guestToken(code, name);
    guest = { token: answer.access_token, name, user: answer.user };
    store.get().userSocket?.stop();
    store.update({ guest, userSocket: null });
  }
  api.token = guest.token;
  store.update({ me: guest.user });
  $('me').textContent = `Calling as ${guest.user.display_name}`;
  $('me').dataset.userId = guest.user.id;
  // call.updated / call.ended reach the guest too: the summary does not wait for the next poll.
  if (!store.get().userSocket) store.update({ userSocket: openUserSocket(guest.token, onUserEvent) });
  const ticket = await api.initiatePaidCall(code, card, name);
  openPaidSession(ticket, 'guest');
}

/** This page is a guest's for the link `code`: its own flow, whatever this tab was signed in as. */
export function startGuest(code: string): void {
  showScreen('guest');
  status(`Loading link ${code}…`);
  $('guest-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const button = $<HTMLButtonElement>('guest-pay');
    if (button.disabled) return;
    button.disabled = true;
    payAndCall(code)
      .catch(guestError)
      .finally(() => {
        button.disabled = false;
      });
  });
  void loadPublicLink(code).then(() => {
    const { publicLink } = store.get();
    if (publicLink) status(`Call ${publicLink.host.display_name} for ${rateText(publicLink)}`);
  });
}

/** The summary's Done button on a guest's page: back to the link. */
export function backToLink(code: string): void {
  showScreen('guest');
  void loadPublicLink(code);
}
