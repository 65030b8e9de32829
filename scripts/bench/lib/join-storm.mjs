// The --storm mode of scripts/bench/join-to-frame.mjs: N real-Chromium joiners click "Join call"
// one every intervalMs into a call with one video publisher, each measuring click → first frame
// presented (requestVideoFrameCallback, src/web/screens/call.ts) in its own page. The joins are
// made by PAGES pages in turn (join k by page k mod PAGES), each leaving as soon as it has its
// frame and capturing only 160x120 at 15 fps itself (the demo publishes a joiner's camera too):
// twenty pages in one call at once would measure this machine's 2 cores, not the join. A page
// that is not back in the lobby when its turn comes makes that join late; each join reports when
// it was actually clicked. The server needs rate_limits.enabled false (sign-ins from one address).
/* global window, document, performance -- functions passed to page.evaluate() run in the browser */
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from '../../lib/chromium.mjs';
import { STEP_TIMEOUT_MS, percentile, waitFor } from './poll.mjs';

const JOINER_CAPTURE = '160x120@15';
const PAGES = 4;



export async function runStorm({ base, api, video, chromiumPath, count, intervalMs }) {
  if (!Number.isInteger(count) || count < 2 || count > 100) throw new Error('--storm must be an integer from 2 to 100');
  if (!Number.isFinite(intervalMs) || intervalMs < 0) throw new Error('--interval-ms must be ≥ 0');
  const stamp = Date.now().toString(36);
  const host = await api('POST', '/v1/demo/login', { body: { display_name: `storm-publisher-${stamp}` } });
  const joiners = await Promise.all(Array.from({ length: Math.min(count, PAGES) }, (_, i) => api('POST', '/v1/demo/login', { body: { display_name: `storm-joiner-${i + 1}-${stamp}` } })));
  const { room } = await api('POST', '/v1/rooms', {
    token: host.access_token,
    body: { name: `storm ${stamp}`, members: joiners.map((j) => ({ user_id: j.user.id, power: 0 })) },
  });

  const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: CHROMIUM_ARGS });
  try {
    const open = async (token, capture = video) => {
      const context = await browser.newContext();
      const page = await context.newPage();
      page.on('pageerror', (error) => console.error(`[page] ${error.message}`));
      await page.goto(`${base}/?video=${encodeURIComponent(capture)}#token=${encodeURIComponent(token)}`);
      await waitFor('the lobby', () => page.evaluate(() => document.body.dataset.state === 'lobby'));
      return page;
    };
    const publisher = await open(host.access_token);
    await publisher.locator(`[data-testid=room][data-room-id="${room.id}"] [data-testid=start-video]`).click();
    const publisherPid = await waitFor('the publisher to join', () => publisher.evaluate(() => window.callplane.participantId));
    await waitFor('the publisher to send video', () =>
      publisher.evaluate(() => window.callplane.sendTransport?.connectionState === 'connected' && Object.values(window.callplane.producers).some((p) => p.kind === 'video')),
    );
    const pages = [];
    for (const joiner of joiners) pages.push(await open(joiner.access_token, JOINER_CAPTURE));
    for (const page of pages) await page.locator(`[data-testid=room][data-room-id="${room.id}"] [data-testid=join-call]`).waitFor({ timeout: STEP_TIMEOUT_MS });
    console.log(`join storm: ${base}, ${count} joiners ${intervalMs} ms apart, capture ${video}, publisher ${publisherPid}`);

    // Clicks on a schedule, each in its page (the page's clock times its own join).
    const started = Date.now();
    const join = async (page, i) => {
      const due = started + i * intervalMs;
      if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
      await page.locator(`[data-testid=room][data-room-id="${room.id}"] [data-testid=join-call]`).waitFor({ timeout: STEP_TIMEOUT_MS });
      const clickedAtMs = Date.now() - started;
      await page.evaluate((roomId) => {
        window.__benchClick = performance.now();
        document.querySelector(`[data-testid=room][data-room-id="${roomId}"] [data-testid=join-call]`).click();
      }, room.id);
      try {
        const ms = await waitFor(
          'the first presented frame',
          () =>
            page.evaluate((from) => {
              const t = window.callplane.timings;
              // The session made by this click (a page's previous session keeps its own marks).
              return t && t.start >= window.__benchClick && t.firstFrame[from] !== undefined ? t.firstFrame[from] - window.__benchClick : null;
            }, publisherPid),
          STEP_TIMEOUT_MS,
          10,
        );
        return { joiner: i + 1, clickedAtMs, clickToFrameMs: ms };
      } catch (error) {
        return { joiner: i + 1, clickedAtMs, error: error.message };
      } finally {
        await page.getByTestId('leave').click().catch(() => undefined);
        await waitFor('the joiner back in the lobby', () => page.evaluate(() => document.body.dataset.state === 'lobby')).catch(() => undefined);
      }
    };
    const lanes = await Promise.all(
      pages.map(async (page, lane) => {
        const mine = [];
        for (let i = lane; i < count; i += pages.length) mine.push(await join(page, i));
        return mine;
      }),
    );
    const outcomes = lanes.flat().sort((a, b) => a.joiner - b.joiner);
    for (const o of outcomes) console.log(`${String(o.joiner).padStart(4)}  clicked at ${String(o.clickedAtMs).padStart(5)} ms  ${o.error ? `FAILED: ${o.error}` : `click→frame ${o.clickToFrameMs.toFixed(0).padStart(5)} ms`}`);
    const sorted = outcomes.filter((o) => !o.error).map((o) => o.clickToFrameMs).sort((a, b) => a - b);
    const failures = outcomes.length - sorted.length;
    const summary = sorted.length
      ? { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), min: sorted[0], max: sorted.at(-1) }
      : null;
    if (summary) {
      console.log(`\njoin storm, click → first frame over ${sorted.length} joins: p50 ${summary.p50.toFixed(0)} ms, p95 ${summary.p95.toFixed(0)} ms, p99 ${summary.p99.toFixed(0)} ms (min ${summary.min.toFixed(0)}, max ${summary.max.toFixed(0)}); failures ${failures}`);
    }
    const callId = await publisher.evaluate(() => window.callplane.callId);
    await api('POST', `/v1/calls/${callId}/end`, { token: host.access_token }).catch(() => undefined);
    return { mode: 'storm', count, intervalMs, summary, failures, outcomes };
  } finally {
    await browser.close().catch(() => undefined);
  }
}
