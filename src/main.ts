import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Config } from './config/schema.ts';
import { demoNeedsWarning } from './config/demo.ts';
import { createContext, type AppContext, type ContextOverrides } from './context.ts';
import { buildOpenApi } from './http/openapi.ts';
import { createHttpMetrics } from './http/metrics.ts';
import { IdempotencyStore } from './http/idempotency.ts';
import { RateLimiter } from './http/rate-limit.ts';
import { HttpServer } from './http/server.ts';
import { opsRoutes, type ReadinessCheck } from './http/routes/ops.ts';
import { userRoutes } from './http/routes/users.ts';
import { storageRoutes } from './http/routes/storage.ts';
import { webRoutes } from './http/routes/web.ts';
import { callRoutes, roomRoutes } from './http/routes/calls.ts';
import { recordingRoutes } from './http/routes/recordings.ts';
import { linkRoutes } from './http/routes/links.ts';
import { webhookRoutes } from './http/routes/webhooks.ts';
import { webhookEndpointRoutes } from './http/routes/webhook-endpoints.ts';
import { attachSignaling } from './signaling/index.ts';
import { demoRoutes } from './http/routes/demo.ts';
import { whipRoutes } from './http/routes/whip.ts';
import { whepRoutes } from './http/routes/whep.ts';
import { UserSockets } from './realtime/user-socket.ts';
import { ChatSockets } from './realtime/chat-socket.ts';
import { chatRoutes } from './http/routes/chat.ts';
import { attachVideochat } from './realtime/videochat.ts';
import { pingDatabase } from './db/database.ts';

export const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface RunningServer {
  ctx: AppContext;
  http: HttpServer;
  /** The chat sockets (/v1/chat/ws). */
  chatSockets: ChatSockets;
  port: number;
  baseUrl: string;
  /** Graceful: stop accepting, let requests finish, close media, storage and the database. Safe to call twice. */
  stop(): Promise<void>;
}

export async function startServer(config: Readonly<Config>, overrides: ContextOverrides = {}): Promise<RunningServer> {
  const ctx = await createContext(config, overrides);
  let shuttingDown = false;
  const idempotency = new IdempotencyStore(ctx.db, ctx.clock, ctx.instanceId);
  const rateLimiter = new RateLimiter(config.rate_limits, ctx.clock);
  let http: HttpServer;
  try {
    http = new HttpServer({
      logger: ctx.logger.child({ component: 'http' }),
      maxBodyBytes: config.http.max_body_bytes,
      trustProxy: config.http.trust_proxy,
      publicUrl: config.http.public_url,
      authenticate: ctx.authenticate,
      idempotency,
      rateLimiter,
      metrics: createHttpMetrics(ctx.registry),
    });
  } catch (error) {
    await ctx.close();
    throw error;
  }

  const checks: Record<string, ReadinessCheck> = {
    database: async () => {
      await pingDatabase(ctx.db);
      return [{ name: 'database', ok: true, detail: config.database.url ? 'DATABASE_URL' : 'embedded PostgreSQL' }];
    },
    media_workers: async () =>
      (await ctx.media.health()).map((worker) => ({ name: `worker-${worker.index}`, ok: worker.ready, pid: worker.pid, ...(worker.error ? { detail: worker.error } : {}) })),
    storage: async () => {
      const result = await ctx.storage.check();
      return [{ name: `storage (${ctx.storage.driver})`, ok: result.ok, detail: result.detail }];
    },
  };
  for (const route of [
    ...opsRoutes({
      registry: ctx.registry,
      checks,
      openapi: () => buildOpenApi(http.routeDefinitions, { version: VERSION, ...(config.http.public_url ? { serverUrl: config.http.public_url } : {}) }),
      jwks: () => ctx.tokens.publicJwks,
      rtpCapabilities: () => ctx.media.routerRtpCapabilities,
      isShuttingDown: () => shuttingDown,
    }),
    ...userRoutes({ users: ctx.users, tokens: ctx.tokens }),
    ...roomRoutes({ rooms: ctx.rooms, settings: ctx.settings }),
    ...callRoutes({ calls: ctx.calls, roomCalls: ctx.roomCalls, paid: ctx.paidCalls }),
    ...recordingRoutes({ recordings: ctx.recordings }),
    ...whipRoutes({ ingress: ctx.ingress }),
    ...whepRoutes({ ingress: ctx.ingress }),
    ...linkRoutes({ links: ctx.links, availability: ctx.availability, users: ctx.users, tokens: ctx.tokens, maxTokenTtlSeconds: config.auth.max_token_ttl_seconds }),
    ...webhookRoutes({ db: ctx.db, billing: ctx.billing, logger: ctx.logger, stripeWebhookSecret: config.payments.stripe_webhook_secret }),
    ...webhookEndpointRoutes({ endpoints: ctx.webhookEndpoints }),
    ...chatRoutes({ chat: ctx.chat, uploads: ctx.chatUploads, follows: ctx.follows, broadcasts: ctx.broadcasts, maxMessageChars: config.chat.max_message_chars }),
    ...(config.demo.enabled ? demoRoutes({ users: ctx.users, tokens: ctx.tokens }) : []),
  ]) {
    http.add(route);
  }
  storageRoutes(http, ctx);
  webRoutes(http, { distDir: fileURLToPath(new URL('./web/dist/', import.meta.url)) });
  const userSockets = new UserSockets(http.app, { authenticate: ctx.authenticate, logger: ctx.logger.child({ component: 'realtime' }), registry: ctx.registry });
  ctx.userNotifier.attach(userSockets);
  const chatSockets = new ChatSockets(http.app, {
    chat: ctx.chat,
    authenticate: ctx.authenticate,
    logger: ctx.logger.child({ component: 'chat-socket' }),
    registry: ctx.registry,
    maxMessageChars: config.chat.max_message_chars,
    messagesPerSecond: config.chat.socket_messages_per_second,
  });
  ctx.chatSink.attach(chatSockets);
  attachVideochat(userSockets, ctx.videochat);
  attachSignaling(http.app, {
    sfu: ctx.sfu,
    resolveToken: (token) => ctx.calls.resolveSignalingToken(token),
    calls: config.calls,
    logger: ctx.logger,
    registry: ctx.registry,
  });

  const purgeTimer = setInterval(() => {
    idempotency.purgeExpired().catch((error: unknown) => ctx.logger.warn({ err: error }, 'idempotency purge failed'));
  }, 3600_000);
  purgeTimer.unref();

  let port: number;
  try {
    port = await http.listen(config.http.host, config.http.port);
  } catch (error) {
    await ctx.close();
    throw error;
  }
  const host = config.http.host === '0.0.0.0' ? '127.0.0.1' : config.http.host;
  const baseUrl = config.http.public_url ?? `http://${host}:${port}`;
  ctx.publicBaseUrl.value = baseUrl;
  ctx.logger.info({ port, baseUrl, workers: config.media.workers, storage: ctx.storage.driver }, 'callplane is listening');
  ctx.logger[demoNeedsWarning(config.demo) ? 'warn' : 'info']({ demo: config.demo.enabled }, `demo sign-in ${config.demo.enabled ? 'on' : 'off'}: ${config.demo.reason}`);

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      shuttingDown = true;
      ctx.logger.info('shutting down: no new connections; finishing requests');
      clearInterval(purgeTimer);
      rateLimiter.close();
      userSockets.closeAll();
      chatSockets.closeAll();
      await http.close(config.shutdown_grace_seconds * 1000);
      await ctx.close();
      ctx.logger.info('shutdown complete');
    })();
    return stopping;
  };
  return { ctx, http, chatSockets, port, baseUrl, stop };
}
