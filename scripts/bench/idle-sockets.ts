// Idle scale (docs/benchmarks.md, "Idle sockets"): N idle signaling sockets (participants of room
// calls of --per-call members, connected, no transports) and M idle user sockets held open against a
// throwaway callplane (one media worker); reports the RSS of the server process and of the worker
// before and after, per 10k sockets of each kind.
//
//   node --import tsx scripts/bench/idle-sockets.ts [--signaling 1000] [--user 5000] [--per-call 10] [--out file.json]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import WebSocket from 'ws';
import { BENCH_API_KEY, loadAverage, rssMb, startCallplane } from './lib/loadtest-bench.ts';

const { values } = parseArgs({ options: { signaling: { type: 'string', default: '1000' }, user: { type: 'string', default: '5000' }, 'per-call': { type: 'string', default: '10' }, out: { type: 'string', default: 'idle-sockets.json' } } });
const signalingCount = Number(values.signaling);
const userCount = Number(values.user);
const perCall = Number(values['per-call']);
const limit = pLimit(16);

const server = await startCallplane({ core: 0, cpuProfile: false, env: { CALLPLANE_CALLS_EMPTY_TIMEOUT_SECONDS: '3600', CALLPLANE_CALLS_SIGNALING_TOKEN_TTL_SECONDS: '3600' } });
async function api<T>(method: string, path: string, body: unknown, auth: { key?: true; token?: string }): Promise<T> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (auth.key) headers['x-api-key'] = BENCH_API_KEY;
  if (auth.token) headers.authorization = `Bearer ${auth.token}`;
  const response = await fetch(`${server.baseUrl}${path}`, { method, headers, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}
const newUser = async (name: string): Promise<{ id: string; token: string }> => {
  const { user } = await api<{ user: { id: string } }>('POST', '/v1/users', { display_name: name }, { key: true });
  const { access_token } = await api<{ access_token: string }>('POST', '/v1/auth/token', { user_id: user.id }, { key: true });
  return { id: user.id, token: access_token };
};
/** Opens a socket and resolves once its first server frame arrived (welcome or presence): it is set up. */
function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('message', () => resolve(ws));
    ws.once('close', (code) => reject(new Error(`closed ${code} before its first frame`)));
    ws.once('error', reject);
  });
}
const sample = () => ({ server_rss_mb: rssMb(server.pid), worker_rss_mb: rssMb(server.workerPid), load_average: loadAverage() });
// The Node process's RSS settles after GC: read it after a pause without traffic.
const settle = () => sleep(3000);

const sockets: WebSocket[] = [];
let result: Record<string, unknown>;
try {
  await settle();
  const before = sample();
  // Signaling: rooms of perCall members, a call each, every member joined with its own socket.
  const started = Date.now();
  await Promise.all(
    Array.from({ length: Math.ceil(signalingCount / perCall) }, (_, room) =>
      limit(async () => {
        const members = await Promise.all(Array.from({ length: Math.min(perCall, signalingCount - room * perCall) }, (_, i) => newUser(`idle r${room} m${i}`)));
        const { room: created } = await api<{ room: { id: string } }>('POST', '/v1/rooms', { name: `idle ${room}`, members: members.slice(1).map((m) => ({ user_id: m.id, power: 0 })) }, { token: members[0]!.token });
        const first = await api<{ call: { id: string }; signaling_url: string; signaling_token: string }>('POST', '/v1/calls/initiate', { room_id: created.id, type: 'audio' }, { token: members[0]!.token });
        sockets.push(await open(`${first.signaling_url}?token=${first.signaling_token}`));
        for (const member of members.slice(1)) {
          const joined = await api<{ signaling_url: string; signaling_token: string }>('POST', `/v1/calls/${first.call.id}/join`, {}, { token: member.token });
          sockets.push(await open(`${joined.signaling_url}?token=${joined.signaling_token}`));
        }
      }),
    ),
  );
  await settle();
  const withSignaling = sample();
  // User sockets: a hundred users, many sockets each (every socket of a user gets its events).
  const users = await Promise.all(Array.from({ length: Math.min(100, userCount) }, (_, i) => limit(() => newUser(`idle user ${i}`))));
  const wsBase = server.baseUrl.replace(/^http/, 'ws');
  await Promise.all(Array.from({ length: userCount }, (_, i) => limit(async () => sockets.push(await open(`${wsBase}/v1/ws?token=${users[i % users.length]!.token}`)))));
  await settle();
  const withUsers = sample();
  const per10k = (a: number | null, b: number | null, n: number): number | null => (a === null || b === null || n === 0 ? null : Math.round(((b - a) / n) * 10_000));
  result = {
    benchmark: 'idle-sockets',
    signaling_sockets: signalingCount,
    user_sockets: userCount,
    setup_s: Math.round((Date.now() - started) / 1000),
    before,
    with_signaling: withSignaling,
    with_user_sockets: withUsers,
    signaling_per_10k: { server_rss_mb: per10k(before.server_rss_mb, withSignaling.server_rss_mb, signalingCount), worker_rss_mb: per10k(before.worker_rss_mb, withSignaling.worker_rss_mb, signalingCount) },
    user_per_10k: { server_rss_mb: per10k(withSignaling.server_rss_mb, withUsers.server_rss_mb, userCount), worker_rss_mb: per10k(withSignaling.worker_rss_mb, withUsers.worker_rss_mb, userCount) },
    still_open: sockets.filter((s) => s.readyState === WebSocket.OPEN).length,
  };
} finally {
  for (const ws of sockets) ws.terminate();
  await server.stop();
}
writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify(result));
