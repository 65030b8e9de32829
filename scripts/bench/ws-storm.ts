// The reconnect storm of docs/known-issues.md (fixed: "A reconnecting socket could be dropped right
// after its upgrade"), outside tap: a throwaway server (embedded PostgreSQL, one media worker, demo
// mode), then sequential refusal → reconnect cycles on the signaling socket and on the user socket.
//
//   node --import tsx scripts/bench/ws-storm.ts [--signaling 300] [--user 700] [--uws 300]
//
// --uws N also runs the bare uWebSockets.js comparison behind the fix, N sockets each way: an upgrade
// done later inside res.cork() versus one done inside the upgrade handler, with native allocations
// of every small size in `open`. Rerun it when upgrading uWS: the late upgrade should stop dropping.
// Prints one JSON line; exits 1 if any socket of the storm dropped.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config/load.ts';
import { loadUws } from '../../src/http/uws.ts';
import { startServer } from '../../src/main.ts';
import { freePortBase, freeTcpPort } from '../../test/helpers/ports.ts';
import { signalingStorm, userSocketStorm } from '../../test/helpers/ws-storm.ts';

const { values } = parseArgs({ options: { signaling: { type: 'string', default: '300' }, user: { type: 'string', default: '700' }, uws: { type: 'string', default: '0' } } });


/** Sockets of a bare uWS app whose first frame (sent on the next turn, like welcome) never came. */
async function bareUws(cycles: number, late: boolean): Promise<{ late: boolean; cycles: number; dropped: number }> {
  const uws = loadUws();
  const app = uws.App();
  const keep: Buffer[] = [];
  app.ws<{ open: boolean }>('/x', {
    upgrade: (res, req, context) => {
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      if (!late) {
        res.upgrade({ open: false }, key, protocol, extensions, context);
        return;
      }
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      setImmediate(() => {
        if (!aborted) res.cork(() => res.upgrade({ open: false }, key, protocol, extensions, context));
      });
    },
    open: (ws) => {
      for (let size = 8; size <= 512; size += 8) keep.push(Buffer.allocUnsafeSlow(size).fill(0x10));
      if (keep.length > 10_000) keep.length = 0;
      const data = ws.getUserData();
      data.open = true;
      setImmediate(() => data.open && ws.send('hello'));
    },
    close: (ws) => {
      ws.getUserData().open = false;
    },
  });
  const listening = await new Promise<unknown>((resolve) => app.listen('127.0.0.1', 0, resolve));
  const port = uws.us_socket_local_port(listening as never);
  let dropped = 0;
  for (let i = 0; i < cycles; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/x`);
    ws.on('error', () => undefined);
    const first = await new Promise<string>((resolve) => {
      ws.once('message', () => resolve('frame'));
      ws.once('close', () => resolve('closed'));
    });
    if (first !== 'frame') dropped += 1;
    const closed = new Promise((resolve) => ws.once('close', resolve));
    if (ws.readyState !== WebSocket.CLOSED) ws.close();
    if (first === 'frame') await closed;
  }
  uws.us_listen_socket_close(listening as never);
  return { late, cycles, dropped };
}

const dataDir = mkdtempSync(join(tmpdir(), 'callplane-storm-'));
const config = loadConfig({
  env: {},
  overrides: {
    data_dir: dataDir,
    log: { level: process.env.CALLPLANE_BENCH_LOG_LEVEL ?? 'silent', pretty: false },
    http: { host: '127.0.0.1', port: 0 },
    database: { embedded_port: await freeTcpPort() },
    media: { workers: 1, listen_ip: '127.0.0.1', port_base: await freePortBase(1) },
    auth: { api_key: 'storm-api-key-0123456789' },
  },
});
const server = await startServer(config);
let failed = false;
try {
  const signaling = await signalingStorm(server.baseUrl, Number(values.signaling));
  const user = await userSocketStorm(server.baseUrl, Number(values.user));
  const uwsCycles = Number(values.uws);
  const uws = uwsCycles > 0 ? [await bareUws(uwsCycles, true), await bareUws(uwsCycles, false)] : undefined;
  failed = [signaling, user].some((r) => r.drops + r.refusalDrops > 0);
  console.log(JSON.stringify({ signaling, user, ...(uws ? { uws } : {}) }));
} finally {
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
