/**
 * Real-browser helpers for the end-to-end tests: Debian Chromium driven by playwright-core, one
 * persistent context (fresh profile dir) per simulated user, closed at teardown; and readers of the
 * demo page's state (window.callplane) and WebRTC stats.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { Test } from 'tap';
import { CHROMIUM_ARGS } from '../../../scripts/lib/chromium.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export const CHROMIUM_PATH = process.env.CALLPLANE_CHROMIUM ?? '/usr/bin/chromium';

export { CHROMIUM_ARGS };

/** Capture size the tests ask the page for (?video=): small frames keep 2 cores free for the SFU. */
export const TEST_VIDEO = '320x240@15';

let built = false;
/** Builds src/web/dist/ when it is missing or stale (a no-op in well under a second otherwise). */
export function ensureWebBuilt(): void {
  if (built) return;
  execFileSync(process.execPath, [join(root, 'scripts/build-web.mjs'), '--quiet'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  built = true;
}

/** Why this machine cannot run the browser tests (no Chromium), or null when it can. */
export function chromiumMissing(): string | null {
  return existsSync(CHROMIUM_PATH) ? null : `no Chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set CALLPLANE_CHROMIUM)`;
}

/**
 * Registers a real-browser test on `parent`. Without Chromium a developer's machine skips it,
 * saying why; under CI=true it fails instead: a CI machine that lost Chromium would otherwise pass
 * the run without having run one browser test.
 */
export function browserTest(parent: Test, name: string, fn: (t: Test) => Promise<void>): Promise<unknown> {
  const missing = chromiumMissing();
  if (!missing) return parent.test(name, fn);
  if (process.env.CI === 'true') {
    return parent.test(name, async (t) => {
      t.fail(`${missing}: CI=true, so the browser tests fail rather than skip`);
    });
  }
  return parent.test(name, { skip: `${missing}; with CI=true this fails instead` }, fn);
}

export interface Client {
  name: string;
  context: BrowserContext;
  page: Page;
  /** Console lines and page errors, for failure messages. */
  logs: string[];
}

/** One simulated user: a Chromium with a fresh profile, closed (and its profile removed) at teardown. */
export async function launchClient(t: Test, name: string): Promise<Client> {
  const profile = mkdtempSync(join(tmpdir(), `callplane-chromium-${name.toLowerCase()}-`));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 960, height: 640 },
      timeout: 30_000,
    });
  } catch (error) {
    rmSync(profile, { recursive: true, force: true });
    throw error;
  }
  t.teardown(async () => {
    await context.close().catch(() => undefined);
    rmSync(profile, { recursive: true, force: true });
  });
  // tsx (esbuild, keepNames) compiles the tests' functions with calls to a `__name` helper; a
  // function passed to page.evaluate() is sent as its source, so the page needs the helper too.
  await context.addInitScript({ content: 'globalThis.__name = (target) => target;' });
  const page = context.pages()[0] ?? (await context.newPage());
  const logs: string[] = [];
  page.on('console', (message) => {
    logs.push(`[${name} ${message.type()}] ${message.text()}`);
    if (logs.length > 300) logs.shift();
  });
  page.on('pageerror', (error) => logs.push(`[${name} pageerror] ${error.message}`));
  return { name, context, page, logs };
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes; then throws with `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T | null | undefined | false> | T | null | undefined | false, options: { timeoutMs?: number; intervalMs?: number; logs?: string[] } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let lastError: unknown = null;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const tail = options.logs?.slice(-25).join('\n') ?? '';
      throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}${tail ? `\npage log:\n${tail}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 200));
  }
}

export interface InboundRtp {
  kind: 'audio' | 'video';
  mid: string | null;
  trackIdentifier: string | null;
  /** The remote participant this stream comes from (matched through the consumer's track), if known. */
  participantId: string | null;
  consumerId: string | null;
  packetsReceived: number;
  bytesReceived: number;
  framesDecoded: number;
  frameWidth: number | null;
  frameHeight: number | null;
}

/** The page's inbound-rtp stats on its receive transport, without mediasoup's bandwidth probe stream. */
export async function inboundRtp(page: Page): Promise<InboundRtp[]> {
  return page.evaluate(async () => {
    const debug = window.callplane;
    const transport = debug?.recvTransport;
    if (!transport || transport.closed) return [];
    const owners = new Map<string, { participantId: string; consumerId: string }>();
    for (const [participantId, consumers] of Object.entries(debug.consumers)) {
      for (const consumer of consumers) owners.set(consumer.track.id, { participantId, consumerId: consumer.id });
    }
    const report = await transport.getStats();
    const rows: InboundRtp[] = [];
    report.forEach((stat: Record<string, unknown>) => {
      if (stat.type !== 'inbound-rtp') return;
      if (stat.mid === 'probator' || stat.trackIdentifier === 'probator') return;
      const owner = owners.get(String(stat.trackIdentifier));
      rows.push({
        kind: stat.kind as 'audio' | 'video',
        mid: (stat.mid as string | undefined) ?? null,
        trackIdentifier: (stat.trackIdentifier as string | undefined) ?? null,
        participantId: owner?.participantId ?? null,
        consumerId: owner?.consumerId ?? null,
        packetsReceived: Number(stat.packetsReceived ?? 0),
        bytesReceived: Number(stat.bytesReceived ?? 0),
        framesDecoded: Number(stat.framesDecoded ?? 0),
        frameWidth: (stat.frameWidth as number | undefined) ?? null,
        frameHeight: (stat.frameHeight as number | undefined) ?? null,
      });
    });
    return rows;
  });
}

/**
 * Waits until `client` decodes video (framesDecoded > 0) and/or receives audio (packetsReceived > 0)
 * from participant `from` (any participant when omitted). Returns the matching stats.
 */
export async function waitForMedia(
  client: Client,
  options: { from?: string; video?: boolean; audio?: boolean; timeoutMs?: number; /** consumers to ignore (e.g. ones from before a reconnection) */ excludeConsumers?: Array<string | null> } = {},
): Promise<{ video: InboundRtp | null; audio: InboundRtp | null }> {
  const wantVideo = options.video ?? true;
  const wantAudio = options.audio ?? true;
  const fromWhom = options.from ? `participant ${options.from}` : 'any participant';
  return waitFor(
    `${client.name} to ${[wantVideo && 'decode video', wantAudio && 'receive audio'].filter(Boolean).join(' and ')} from ${fromWhom}`,
    async () => {
      const rows = (await inboundRtp(client.page)).filter(
        (row) => (!options.from || row.participantId === options.from) && !options.excludeConsumers?.includes(row.consumerId),
      );
      const video = rows.find((row) => row.kind === 'video' && row.framesDecoded > 0) ?? null;
      const audio = rows.find((row) => row.kind === 'audio' && row.packetsReceived > 0) ?? null;
      if ((wantVideo && !video) || (wantAudio && !audio)) return null;
      return { video, audio };
    },
    { timeoutMs: options.timeoutMs ?? 30_000, logs: client.logs },
  );
}

// ---------------------------------------------------------------------------------------------
// Driving the demo page

/** Opens the demo page at `baseUrl`, with the small test capture size (and `extraQuery`, e.g. `ice=relay`). */
export async function openDemo(client: Client, baseUrl: string, extraQuery = ''): Promise<void> {
  const response = await client.page.goto(`${baseUrl}/?video=${TEST_VIDEO}${extraQuery ? `&${extraQuery}` : ''}`, { waitUntil: 'load' });
  if (!response || response.status() !== 200) {
    throw new Error(`GET ${baseUrl}/ answered ${response?.status()} ${await response?.text().catch(() => '')}: is webRoutes() wired in main.ts?`);
  }
  await waitFor('the demo page to start', () => client.page.evaluate(() => document.body.dataset.state !== 'loading'), { logs: client.logs });
}

/** The page's state: signin | lobby | call. */
export function pageState(client: Client): Promise<string> {
  return client.page.evaluate(() => document.body.dataset.state ?? 'loading');
}

export async function waitForState(client: Client, state: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(`${client.name}'s page to show ${state}`, async () => (await pageState(client)) === state, {
    timeoutMs,
    logs: client.logs,
  }).catch(async (error: Error) => {
    const status = await client.page.locator('[data-testid=status]').textContent().catch(() => '?');
    throw new Error(`${error.message}\nstatus line: ${status}`);
  });
}

/** Signs in through the demo login form; returns the user and their access token. */
export async function demoSignIn(client: Client, displayName: string): Promise<{ userId: string; token: string }> {
  await client.page.getByTestId('login-name').fill(displayName);
  await client.page.getByTestId('login-button').click();
  await waitForState(client, 'lobby');
  // Invites travel on the user socket: it must be up before anyone rings this user.
  await waitFor(`${client.name}'s user socket`, () => client.page.evaluate(() => document.getElementById('presence')?.dataset.connected === 'true'), { logs: client.logs });
  return client.page.evaluate(() => ({ userId: window.callplane.me!.id, token: sessionStorage.getItem('callplane.token')! }));
}

export function notificationsOf(client: Client, type: string): Promise<Array<Record<string, unknown>>> {
  return client.page.evaluate((wanted) => window.callplane.notifications.filter((n) => n.type === wanted).map((n) => n.payload as Record<string, unknown>), type);
}

/** Waits until the page has received a signaling notification of `type` matching `match`. */
export function waitForNotification(client: Client, type: string, match: (payload: Record<string, unknown>) => boolean = () => true, timeoutMs = 20_000): Promise<Record<string, unknown>> {
  return waitFor(`${client.name} to receive ${type}`, async () => (await notificationsOf(client, type)).find(match), { timeoutMs, logs: client.logs });
}

/** The page's own participant id once its welcome has arrived. */
export function waitForParticipantId(client: Client, timeoutMs = 20_000): Promise<string> {
  return waitFor(`${client.name}'s welcome`, () => client.page.evaluate(() => window.callplane.participantId), { timeoutMs, logs: client.logs });
}

/** Waits until the page publishes (its producers exist and its send transport is connected). */
export function waitForPublishing(client: Client, kinds: Array<'audio' | 'video'> = ['audio', 'video'], timeoutMs = 20_000): Promise<true> {
  return waitFor(
    `${client.name} to publish ${kinds.join('+')}`,
    () =>
      client.page.evaluate((wanted) => {
        const debug = window.callplane;
        const kindsUp = Object.values(debug.producers).filter((p) => !p.closed).map((p) => p.kind);
        return debug.sendTransport?.connectionState === 'connected' && wanted.every((kind) => kindsUp.includes(kind));
      }, kinds),
    { timeoutMs, logs: client.logs },
  );
}

/** On a failing test, print the last lines of each page's console: the first thing to read. */
export function dumpPageLogsOnFailure(t: Test, clients: readonly Client[]): void {
  t.teardown(() => {
    if (t.passing()) return;
    for (const client of clients) t.comment(`--- ${client.name}'s page log ---\n${client.logs.slice(-40).join('\n')}`);
  });
}
