/**
 * The callplane demo page: demo sign-in (or a pasted access token), rooms, ringing invites over the
 * user socket, and a call grid driven by CallSession. Hosts also create paid links and answer the
 * calls that come through them; `/?link=<short_code>` is the guest's side of a link (pay, wait for
 * the host, talk). Paid calls show a live meter and end on a billing summary. Elements carry
 * data-testid attributes and `window.callplane` exposes the live state for the end-to-end tests.
 *
 * This module wires the screens (src/web/screens/) to the store and starts the page.
 */
import { exposeDebugHandle } from './debug.ts';
import { preloadDevice } from './device.ts';
import { TOKEN_KEY, guestCode, renderScreen, showError, showScreen, status } from './page.ts';
import { mountCall } from './screens/call.ts';
import { mountChat } from './screens/chat.ts';
import { backToLink, startGuest } from './screens/guest.ts';
import { mountLobby, refreshLinksSoon, refreshRoomsSoon } from './screens/lobby.ts';
import { endCall, mountMeter } from './screens/meter.ts';
import { mountSignin, signIn } from './screens/signin.ts';
import { mountVideochat } from './screens/videochat.ts';
import { store, watch } from './store.ts';

watch(store, (state) => state.screen, renderScreen);
mountSignin();
mountLobby();
mountVideochat();
mountCall({ endCall });
mountChat();
mountMeter({
  summaryDone() {
    if (guestCode) {
      backToLink(guestCode);
      return;
    }
    showScreen(store.get().me ? 'lobby' : 'signin');
    refreshRoomsSoon();
    refreshLinksSoon();
  },
});
exposeDebugHandle();
preloadDevice();

// A token from #token=… (kept out of server logs) or from this tab's session.
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) history.replaceState(null, '', location.pathname + location.search);
const saved = fromHash ?? sessionStorage.getItem(TOKEN_KEY);
if (guestCode) {
  startGuest(guestCode);
} else if (saved) {
  status('Signing in…');
  signIn(saved).catch((error: unknown) => {
    showScreen('signin');
    showError(error);
  });
} else {
  showScreen('signin');
  status('Sign in with a name to try the demo');
}
