#!/usr/bin/env node
// Benchmark: "a page joins a running call → its first decoded remote video frame", in real Chromium.
//
//   npm start                                   # a server in demo mode (the embedded default)
//   node scripts/bench/join-to-frame.mjs [--url http://127.0.0.1:8080] [--runs 12] [--video 640x360@30] [--json out.json]
//
// A publisher page starts a video call in a fresh room and stays in it. A joiner page (one Chromium,
// reloaded before every run) signs in with its token, then each run measures, inside the joiner's
// page, from the click on "Join call" to the first frame of the publisher's video presented by the
// <video> element (requestVideoFrameCallback), and breaks it down: POST /join answered, signaling
// welcome, first decoded frame as seen by getStats (framesDecoded > 0, polled). The joiner leaves
// after each run. Prints every run, then p50/p95/min/max.
//
// Each run also prints where the time went, from the page's own marks (src/web/call.ts timings):
// POST /join answered, welcome, device loaded, receive transport created, first consume answered,
// receive transport connected (ICE+DTLS), first resume answered, first frame.
//
// --mode sdk|sdp|both (default sdk): the joiner uses the demo's SDK path, its plain WebRTC mode
// (?mode=sdp, src/web/plain-call.ts: RTCPeerConnection and seed 000's offer/answer), or both, one
// series after the other against the same publisher in the same run. The plain path's steps are
// POST /join answered, socket open, offer sent, answer applied, ICE+DTLS connected, first frame.
//
// --storm N [--interval-ms 300]: N joins, one every --interval-ms, by 4 joiner pages in turn (one
// Chromium; each leaves once it has its frame), without waiting for each other; each reports its
// click → first frame, and the run prints p50/p95/p99 and failures (scripts/bench/lib/join-storm.mjs). This is the case of people
// joining within a second or two of each other (media.key_frame_request_delay_ms).
//
// Runs are spaced by --gap-ms (default 3000). Back-to-back joins (--gap-ms 0) measure something
// else: the publisher's Chrome ignores a key-frame request (PLI) that comes soon after the previous
// one, so mediasoup re-asks after its 1 s KeyFrameRetransmissionWaitTime and about half the joins
// then take ~1.15 s. That is what a room sees when several people join within a second or two.
/* global window, document, performance -- functions passed to page.evaluate() run in the browser */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { runStorm } from './lib/join-storm.mjs';
import { CHROMIUM_ARGS } from '../lib/chromium.mjs';
import { STEP_TIMEOUT_MS, percentile, waitFor } from './lib/poll.mjs';

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.CALLPLANE_URL ?? 'http://127.0.0.1:8080' },
    runs: { type: 'string', default: '12' },
    'gap-ms': { type: 'string', default: '3000' },
    video: { type: 'string', default: '640x360@30' },
    json: { type: 'string' },
    storm: { type: 'string' },
    mode: { type: 'string', default: 'sdk' },
    'interval-ms': { type: 'string', default: '300' },
    chromium: { type: 'string', default: process.env.CALLPLANE_CHROMIUM ?? '/usr/bin/chromium' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  console.log('usage: node scripts/bench/join-to-frame.mjs [--url URL] [--runs N (>= 10)] [--gap-ms MS] [--video WxH@FPS] [--mode sdk|sdp|both] [--json FILE] [--chromium PATH]');
  console.log('       node scripts/bench/join-to-frame.mjs --storm N [--interval-ms 300] [--url URL] [--video WxH@FPS] [--json FILE]');
  process.exit(0);
}
const base = opts.url.replace(/\/$/, '');
const runs = Math.max(10, Number(opts.runs) || 12);
const gapMs = Math.max(0, Number(opts['gap-ms']) || 0);
const modes = opts.mode === 'both' ? ['sdk', 'sdp'] : [opts.mode];
if (!modes.every((m) => m === 'sdk' || m === 'sdp')) {
  console.error(`--mode must be sdk, sdp or both (got ${opts.mode})`);
  process.exit(2);
}


async function api(method, path, { token, body } = {}) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const json = await response.json().catch(() => null);
  if (!response.ok) throw new Error(`${method} ${path} → ${response.status} ${JSON.stringify(json)}`);
  return json;
}


const profiles = [];
async function launch(name) {
  const profile = mkdtempSync(join(tmpdir(), `callplane-bench-${name}-`));
  profiles.push(profile);
  const context = await chromium.launchPersistentContext(profile, { executablePath: opts.chromium, headless: true, args: CHROMIUM_ARGS });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (error) => console.error(`[${name}] ${error.message}`));
  return { context, page };
}

async function openSignedIn(page, token, mode = 'sdk') {
  await page.goto(`${base}/?video=${encodeURIComponent(opts.video)}${mode === 'sdp' ? '&mode=sdp' : ''}#token=${encodeURIComponent(token)}`);
  await waitFor('the lobby', () => page.evaluate(() => document.body.dataset.state === 'lobby'));
}


/** The join's steps, each from the previous mark (click first): [key of the mark, label]. */
const SDK_STEPS = [
  ['start', 'REST join'],
  ['welcome', 'welcome'],
  ['deviceLoaded', 'device load'],
  ['recvCreated', 'recv transport'],
  ['consumeAnswered', 'consume'],
  ['recvConnected', 'ICE+DTLS'],
  ['resumeAnswered', 'resume'],
  ['frame', 'first key frame → presented'],
];
/** The plain WebRTC path's marks (src/web/plain-call.ts timings). */
const SDP_STEPS = [
  ['start', 'REST join'],
  ['socketOpen', 'socket open'],
  ['offerSent', 'offer'],
  ['answerApplied', 'answer'],
  ['connected', 'ICE+DTLS'],
  ['frame', 'first key frame → presented'],
];
function stepDurations(marks, STEPS) {
  const steps = {};
  let previous = marks.click;
  for (const [key] of STEPS) {
    const at = marks[key];
    if (typeof at !== 'number') continue;
    steps[key] = at - previous;
    previous = Math.max(previous, at);
  }
  return steps;
}

const fmt = (ms) => (ms === null || ms === undefined ? '   -  ' : `${ms.toFixed(0).padStart(5)} ms`);

let publisher = null;
let joiner = null;
try {
  try {
    await api('GET', '/healthz');
  } catch (error) {
    throw new Error(`no callplane at ${base} (${error.message}); start one with \`npm start\` or pass --url`);
  }
  if (opts.storm) {
    const summary = await runStorm({ base, api, video: opts.video, chromiumPath: opts.chromium, count: Number(opts.storm), intervalMs: Number(opts['interval-ms']) });
    if (opts.json) writeFileSync(opts.json, `${JSON.stringify({ url: base, video: opts.video, at: new Date().toISOString(), ...summary }, null, 2)}\n`);
    process.exit(summary.failures > 0 ? 1 : 0);
  }
  const stamp = Date.now().toString(36);
  const host = await api('POST', '/v1/demo/login', { body: { display_name: `bench-publisher-${stamp}` } });
  const guest = await api('POST', '/v1/demo/login', { body: { display_name: `bench-joiner-${stamp}` } });
  const { room } = await api('POST', '/v1/rooms', { token: host.access_token, body: { name: `bench ${stamp}`, members: [{ user_id: guest.user.id, power: 0 }] } });

  [publisher, joiner] = await Promise.all([launch('publisher'), launch('joiner')]);
  await openSignedIn(publisher.page, host.access_token);
  await publisher.page.locator(`[data-testid=room][data-room-id="${room.id}"] [data-testid=start-video]`).click();
  const publisherPid = await waitFor('the publisher to join', () => publisher.page.evaluate(() => window.callplane.participantId));
  await waitFor('the publisher to send video', () =>
    publisher.page.evaluate(() => window.callplane.sendTransport?.connectionState === 'connected' && Object.values(window.callplane.producers).some((p) => p.kind === 'video')),
  );
  console.log(`join-to-frame: ${base}, ${runs} runs ${gapMs} ms apart, capture ${opts.video}, publisher ${publisherPid}, mode ${modes.join(' then ')}`);
  const summaries = {};
  const allResults = {};
  for (const mode of modes) {
    const STEPS = mode === 'sdp' ? SDP_STEPS : SDK_STEPS;
    console.log(`\n[${mode === 'sdp' ? 'plain WebRTC (?mode=sdp)' : 'SDK (mediasoup-client)'}]`);
    console.log(' run   click→frame   POST join    welcome   stats≥1frame   | steps: ' + STEPS.map(([, label]) => label).join(' · '));

    const results = [];
    for (let run = 1; run <= runs; run++) {
      if (run > 1 && gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
      await openSignedIn(joiner.page, guest.access_token, mode);
      const button = joiner.page.locator(`[data-testid=room][data-room-id="${room.id}"] [data-testid=join-call]`);
      await button.waitFor({ timeout: STEP_TIMEOUT_MS });
      // Mark and click in the page itself, so the clock and the frame callback share a timeline.
      await joiner.page.evaluate((roomId) => {
        window.__benchClick = performance.now();
        document.querySelector(`[data-testid=room][data-room-id="${roomId}"] [data-testid=join-call]`).click();
      }, room.id);
      const statsFrameAt = await waitFor(
        'a decoded frame in getStats',
        () =>
          joiner.page.evaluate(async ({ from, mode }) => {
            const debug = window.callplane;
            if (mode === 'sdp') {
              if (!debug.plain?.pc) return null;
              let frames = 0;
              (await debug.plain.pc.getStats()).forEach((s) => {
                if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded ?? 0;
              });
              return frames > 0 ? performance.now() : null;
            }
            const consumer = (debug.consumers[from] ?? []).find((c) => c.kind === 'video');
            if (!consumer || !debug.recvTransport) return null;
            const stats = await consumer.getStats();
            let decoded = 0;
            stats.forEach((s) => {
              if (s.type === 'inbound-rtp' && s.mid !== 'probator' && s.trackIdentifier !== 'probator') decoded += s.framesDecoded ?? 0;
            });
            return decoded > 0 ? performance.now() : null;
          }, { from: publisherPid, mode }),
        STEP_TIMEOUT_MS,
        20,
      );
      const timings = await waitFor('the first presented frame', () =>
        joiner.page.evaluate((from) => {
          const t = window.callplane.timings;
          return t && t.firstFrame[from] !== undefined ? { ...t, click: window.__benchClick } : null;
        }, publisherPid),
      );
      const result = {
        run,
        clickToFrameMs: timings.firstFrame[publisherPid] - timings.click,
        joinAnsweredMs: timings.start - timings.click,
        welcomeMs: timings.welcome === undefined ? null : timings.welcome - timings.click,
        statsFrameMs: statsFrameAt - timings.click,
        steps: stepDurations({ ...timings, frame: timings.firstFrame[publisherPid] }, STEPS),
      };
      results.push(result);
      console.log(`${String(run).padStart(4)}   ${fmt(result.clickToFrameMs)}   ${fmt(result.joinAnsweredMs)}   ${fmt(result.welcomeMs)}   ${fmt(result.statsFrameMs)}   | ${STEPS.map(([key]) => fmt(result.steps[key]).trim()).join(' · ')}`);
      await joiner.page.getByTestId('leave').click();
      await waitFor('the joiner to leave', () => joiner.page.evaluate(() => document.body.dataset.state === 'lobby'));
    }

    const summary = {};
    for (const key of ['clickToFrameMs', 'joinAnsweredMs', 'welcomeMs', 'statsFrameMs']) {
      const sorted = results.map((r) => r[key]).filter((v) => typeof v === 'number').sort((x, y) => x - y);
      summary[key] = { p50: percentile(sorted, 50), p95: percentile(sorted, 95), min: sorted[0], max: sorted.at(-1) };
    }
    const stepP50 = STEPS.map(([key, label]) => {
      const sorted = results.map((r) => r.steps[key]).filter((v) => typeof v === 'number').sort((x, y) => x - y);
      summary[`step_${key}`] = { p50: percentile(sorted, 50), p95: percentile(sorted, 95) };
      return `${label} ${sorted.length ? percentile(sorted, 50).toFixed(0) : '-'}`;
    });
    console.log(`\n[${mode}] steps, p50 ms: ${stepP50.join(' · ')}`);
    const s = summary.clickToFrameMs;
    console.log(`\n[${mode}] join → first frame over ${runs} runs: p50 ${s.p50.toFixed(0)} ms, p95 ${s.p95.toFixed(0)} ms (min ${s.min.toFixed(0)}, max ${s.max.toFixed(0)})`);
    console.log(`  POST join answered p50 ${summary.joinAnsweredMs.p50.toFixed(0)} ms; ${mode === 'sdk' ? `welcome p50 ${summary.welcomeMs.p50?.toFixed(0)} ms;` : ''} getStats frame p50 ${summary.statsFrameMs.p50.toFixed(0)} ms`);
    summaries[mode] = summary;
    allResults[mode] = results;
  }
  if (modes.length > 1) console.log(`\nboth paths, click → first frame p50: ${modes.map((m) => `${m} ${summaries[m].clickToFrameMs.p50.toFixed(0)} ms (p95 ${summaries[m].clickToFrameMs.p95.toFixed(0)})`).join(', ')}`);
  if (opts.json) {
    writeFileSync(opts.json, `${JSON.stringify({ url: base, video: opts.video, runs, gapMs, at: new Date().toISOString(), ...(modes.length === 1 ? { mode: modes[0], summary: summaries[modes[0]], results: allResults[modes[0]] } : { modes, summaries, results: allResults }) }, null, 2)}\n`);
    console.log(`wrote ${opts.json}`);
  }
  await api('POST', `/v1/calls/${await publisher.page.evaluate(() => window.callplane.callId)}/end`, { token: host.access_token }).catch(() => undefined);
} catch (error) {
  console.error(`join-to-frame: FAILED: ${error.message}`);
  process.exitCode = 1;
} finally {
  await Promise.all([publisher?.context.close(), joiner?.context.close()].filter(Boolean)).catch(() => undefined);
  for (const profile of profiles) rmSync(profile, { recursive: true, force: true });
}
