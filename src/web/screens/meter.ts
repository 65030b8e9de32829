/**
 * A paid call on this page: its session, the live meter above the grid (status polls, the end
 * answer, user-socket events and signaling warnings all feed it) and the billing summary the call
 * ends on. The host answers from the lobby's ring, the guest from the link's page.
 */
import type { PaidCall, PaidCallTicket } from '../api.ts';
import type { PageSession } from '../call.ts';
import { PaidMeter, billingWarning, clock, endReasonText, isTerminal, meterHeadline, money, newerCall, rateText, timeOfDay } from '../paid.ts';
import { $, api, showScreen, status } from '../page.ts';
import { store, watch, type PaidContext, type PaidRole } from '../store.ts';
import { openSession } from './call.ts';

export function inPaidSession(): boolean {
  const { paid, session } = store.get();
  return !!paid && !!session && session.callId === paid.callId;
}

/** The End button: a paid call's end answer carries its final figures, shown at once. */
export function endCall(session: PageSession): Promise<unknown> {
  return inPaidSession() ? session.end<PaidCall>((call) => updatePaid(call)) : session.end();
}

export function openPaidSession(ticket: PaidCallTicket, role: PaidRole): void {
  const { paid, paidEnded } = store.get();
  paid?.meter.stop();
  const callId = ticket.call.id;
  const meter = new PaidMeter(api, callId, updatePaid);
  const ended = new Set(paidEnded);
  ended.delete(callId);
  store.update({ paid: { role, callId, call: ticket.call, signaled: null, meter }, paidEnded: ended });
  const other = role === 'host' ? (ticket.call.guest_name ?? 'your guest') : ticket.call.host.display_name;
  openSession(ticket, {
    title: `Paid call with ${other}`,
    kind: 'paid',
    callStatus(payload) {
      const current = store.get().paid;
      if (!current || payload.callId !== current.callId) return;
      store.update({ paid: { ...current, signaled: payload.warning ? payload : current.signaled } });
    },
    finished(reason, message) {
      status(message, reason === 'error');
      if (store.get().paid) {
        showSummary();
        return;
      }
      // Signed out during the call: there is no summary to show.
      showScreen(store.get().me ? 'lobby' : 'signin');
    },
  });
  meter.start();
}

/** Takes a newer view of the paid call (status poll, end answer, user-socket event) and shows it. */
export function updatePaid(call: PaidCall): void {
  const { paid } = store.get();
  if (!paid || paid.callId !== call.id) return;
  const newer = newerCall(paid.call, call);
  if (isTerminal(newer)) paid.meter.stop();
  store.update({ paid: { ...paid, call: newer } });
}

function renderMeter(paid: PaidContext | null): void {
  const call = paid?.call;
  if (!paid || !call) return;
  $('meter').dataset.status = call.status;
  $('meter-status').textContent = meterHeadline(call, paid.role);
  const elapsed = call.elapsed_seconds ?? (call.status === 'waiting' || call.status === 'pending' ? 0 : null);
  $('meter-elapsed').textContent = clock(elapsed);
  $('meter-elapsed').dataset.seconds = call.elapsed_seconds === null ? '' : String(call.elapsed_seconds);
  $('meter-window').textContent = call.current_window ? `Window ${call.current_window} (${call.window_size_minutes} min)` : `${call.window_size_minutes}-min windows`;
  $('meter-window').dataset.window = call.current_window === null ? '' : String(call.current_window);
  $('meter-estimate').textContent = money(call.estimated_charge ?? (elapsed === 0 ? '0.00' : null), call.currency);
  $('meter-estimate').dataset.value = call.estimated_charge ?? '';
  $('meter-rate').textContent = rateText(call);
  $('meter-next-hold').textContent = call.next_hold_at && call.status === 'active' ? `next hold at ${timeOfDay(call.next_hold_at)}` : '';
  const warning = billingWarning(call, paid.signaled);
  $('meter-warning').hidden = !warning;
  $('meter-warning').textContent = warning ?? '';
  const endsAt = call.ends_at ?? (typeof paid.signaled?.ends_at === 'string' ? paid.signaled.ends_at : null);
  if (endsAt) $('meter-warning').dataset.endsAt = endsAt;
  else delete $('meter-warning').dataset.endsAt;
}

function showSummary(): void {
  const { paid } = store.get();
  if (!paid) return;
  showScreen('summary');
  renderSummary(paid);
  // The meter keeps polling until the call is settled (completed, cancelled or failed).
  if (!isTerminal(paid.call) && !paid.meter.running) {
    const meter = new PaidMeter(api, paid.callId, updatePaid);
    store.update({ paid: { ...paid, meter } });
    meter.start();
  }
}

function renderSummary(paid: PaidContext | null): void {
  const call = paid?.call;
  if (!paid || !call) return;
  const final = isTerminal(call);
  const summary = $('summary');
  summary.dataset.callId = call.id;
  summary.dataset.status = call.status;
  summary.dataset.final = String(final);
  $('summary-title').textContent = final ? 'Call summary' : 'Call ending: settling the payment…';
  $('summary-status').textContent = call.status;
  $('summary-duration').textContent = clock(call.duration_seconds);
  $('summary-duration').dataset.seconds = call.duration_seconds === null ? '' : String(call.duration_seconds);
  $('summary-billed-minutes').textContent = call.billed_minutes === null ? '–' : String(call.billed_minutes);
  $('summary-billed-minutes').dataset.value = call.billed_minutes === null ? '' : String(call.billed_minutes);
  $('summary-total').textContent = money(call.total_charged, call.currency);
  $('summary-total').dataset.value = call.total_charged ?? '';
  $('summary-reason').textContent = endReasonText(call.end_reason);
}

/** `summaryDone` is where the summary's Done button leads (the guest's link, or the lobby). */
export function mountMeter({ summaryDone }: { summaryDone: () => void }): void {
  watch(
    store,
    (state) => state.paid,
    (paid) => {
      renderMeter(paid);
      if (store.get().screen === 'summary') renderSummary(paid);
    },
  );
  $('summary-done').addEventListener('click', () => {
    store.get().paid?.meter.stop();
    store.update({ paid: null });
    summaryDone();
  });
}
