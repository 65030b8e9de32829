/**
 * The demo sign-in's safe default (README "The demo sign-in"): on for a loopback bind, off for any
 * other address unless demo.enabled says so, and the start-up log saying which and why.
 */
import t from 'tap';
import { pino } from 'pino';
import type { Logger } from '../../src/shared/logger.ts';
import { startTestServer } from '../helpers/server.ts';

/** A logger that keeps its JSON lines, to read the start-up log. */
function recordingLogger(): { logger: Logger; lines: Array<{ level: number; msg: string }> } {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger: Logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as { level: number; msg: string }) });
  return { logger, lines };
}
const WARN = 40;

const login = (server: Awaited<ReturnType<typeof startTestServer>>) => server.api('/v1/demo/login', { method: 'POST', body: { display_name: 'Demo Dana' } });

t.test('on by default on a loopback bind', async (t) => {
  const { logger, lines } = recordingLogger();
  const server = await startTestServer(t, {}, { logger });
  t.equal(server.ctx.config.http.host, '127.0.0.1');
  const signedIn = await login(server);
  t.equal(signedIn.status, 201, 'signed in');
  t.ok(signedIn.body.access_token, 'a token');
  const line = lines.find((l) => l.msg.startsWith('demo sign-in'));
  t.match(line, { msg: /^demo sign-in on: on by default/ });
  t.ok(line && line.level < WARN, 'logged at info');
});

t.test('refused by default on a non-loopback bind, and the log says why and how to turn it on', async (t) => {
  const { logger, lines } = recordingLogger();
  const server = await startTestServer(t, { http: { host: '0.0.0.0' } }, { logger });
  const refused = await login(server);
  t.equal(refused.status, 404, 'the route is not registered');
  t.equal(refused.body.error.code, 'not_found');
  t.equal((await server.api('/v1/demo/users', { apiKey: true })).status, 404);
  const line = lines.find((l) => l.msg.startsWith('demo sign-in'));
  t.match(line, { level: WARN, msg: /^demo sign-in off: off by default because http\.host 0\.0\.0\.0 is not a loopback address; set demo\.enabled: true/ });
  t.equal((await server.api('/healthz')).status, 200, 'the rest of the server is there');
});

t.test('served on a non-loopback bind when demo.enabled is true', async (t) => {
  const { logger, lines } = recordingLogger();
  const server = await startTestServer(t, { http: { host: '0.0.0.0' }, demo: { enabled: true } }, { logger });
  const signedIn = await login(server);
  t.equal(signedIn.status, 201, 'signed in');
  t.match(lines.find((l) => l.msg.startsWith('demo sign-in')), { level: WARN, msg: /^demo sign-in on: demo\.enabled is true, although/ });
});
