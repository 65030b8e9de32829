import { join } from 'node:path';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Config } from './config/schema.ts';
import { createDatabase, pingDatabase, type Database } from './db/database.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded.ts';
import { migrateToLatest } from './db/migrate.ts';
import { createAuthenticator } from './identity/authenticator.ts';
import { loadOrCreateApiKey, loadOrCreateSigningKey, signingKeyPath } from './identity/keys.ts';
import { TokenService } from './identity/tokens.ts';
import { UserService } from './identity/users.ts';
import { createMediaMetrics } from './media/metrics.ts';
import { WorkerPool } from './media/worker-pool.ts';
import { createStorage } from './storage/index.ts';
import { RoomService, SettingsService } from './calls/rooms.ts';
import { SignalingTokenService } from './calls/signaling-tokens.ts';
import { UserNotifierRelay } from './calls/ports.ts';
import { TurnCredentialMinter } from './turn/credentials.ts';
import { SfuRegistry } from './calls/sfu/index.ts';
import { CallService } from './calls/call-service.ts';
import type { ObjectStorage } from './storage/types.ts';
import { systemClock, type Clock } from './shared/clock.ts';
import { createLogger, type Logger } from './shared/logger.ts';
import { loadOrCreateSecretFile } from './shared/secrets.ts';

/** Every long-lived service, built in one place from config. Transports receive what they need from here. */
export interface AppContext {
  config: Readonly<Config>;
  logger: Logger;
  clock: Clock;
  registry: Registry;
  db: Database;
  databaseUrl: string;
  apiKey: { key: string; source: string };
  tokens: TokenService;
  users: UserService;
  authenticate: ReturnType<typeof createAuthenticator>;
  media: WorkerPool;
  storage: ObjectStorage;
  /** HMAC secret of the local storage driver's signed URLs. */
  urlSigningSecret: string;
  rooms: RoomService;
  settings: SettingsService;
  signalingTokens: SignalingTokenService;
  turn: TurnCredentialMinter;
  /** The live SFU state of this node's calls. */
  sfu: SfuRegistry;
  calls: CallService;
  /** Domain → users' sockets; the realtime transport attaches itself at start-up. */
  userNotifier: UserNotifierRelay;
  /** Set by the HTTP layer once it listens; storage signs local URLs against it. */
  publicBaseUrl: { value: string };
  close(): Promise<void>;
}

/** Tests replace parts (clock, logger, storage...) without touching the wiring. */
export interface ContextOverrides {
  clock?: Clock;
  logger?: Logger;
  storage?: ObjectStorage;
}

export async function createContext(config: Readonly<Config>, overrides: ContextOverrides = {}): Promise<AppContext> {
  const logger = overrides.logger ?? createLogger(config.log);
  const clock = overrides.clock ?? systemClock;
  const cleanups: Array<() => Promise<void> | void> = [];
  const close = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        logger.error({ err: error }, 'error while closing a service');
      }
    }
  };

  try {
    let databaseUrl = config.database.url;
    if (!databaseUrl) {
      const embedded: EmbeddedDatabase = await startEmbeddedPostgres(config.data_dir, config.database.embedded_port, logger);
      cleanups.push(() => embedded.stop());
      databaseUrl = embedded.url;
    }
    const db = createDatabase(databaseUrl, config.database.pool_size);
    cleanups.push(() => db.destroy());
    await pingDatabase(db);
    await migrateToLatest(db);

    const registry = new Registry();
    collectDefaultMetrics({ register: registry, prefix: 'callplane_' });

    const apiKey = await loadOrCreateApiKey(config.data_dir, config.auth.api_key);
    logger.info({ source: apiKey.source }, 'operator API key (send as X-Api-Key)');
    const signingKey = await loadOrCreateSigningKey(signingKeyPath(config.data_dir, config.auth.signing_key_file), config.auth.signing_key_file === null);
    const tokens = new TokenService(signingKey, config.auth, clock);
    const users = new UserService(db, clock);

    const publicBaseUrl = { value: config.http.public_url ?? `http://127.0.0.1:${config.http.port}` };
    const urlSigningSecret = await loadOrCreateSecretFile(join(config.data_dir, 'keys', 'url-signing-secret'));
    const storage =
      overrides.storage ??
      createStorage(config.storage, {
        signingSecret: urlSigningSecret,
        publicBaseUrl: () => publicBaseUrl.value,
        logger,
      });
    cleanups.push(() => storage.close());

    const rooms = new RoomService(db, clock);
    const settings = new SettingsService(db);
    const signalingTokens = new SignalingTokenService(db, clock, config.calls.signaling_token_ttl_seconds);
    const turnSecret = config.turn.secret ?? (await loadOrCreateSecretFile(join(config.data_dir, 'keys', 'turn-secret')));
    const turn = new TurnCredentialMinter(config.turn, turnSecret, clock);
    const userNotifier = new UserNotifierRelay();

    const media = await WorkerPool.create(config.media, { logger, metrics: createMediaMetrics(registry) });
    cleanups.push(() => media.close());
    const sfu = new SfuRegistry({ pool: media, logger, calls: config.calls, iceServers: (identity) => turn.iceServers(identity.participantId) });
    cleanups.push(() => sfu.close()); // before the pool: calls end cleanly, then workers stop
    const calls = new CallService({ db, clock, logger, rooms, tokens: signalingTokens, turn, media: sfu, notifier: userNotifier });
    wireCallEvents(sfu, calls, logger);

    return {
      config,
      logger,
      clock,
      registry,
      db,
      databaseUrl,
      apiKey,
      tokens,
      users,
      authenticate: createAuthenticator(apiKey.key, tokens),
      media,
      storage,
      urlSigningSecret,
      rooms,
      settings,
      signalingTokens,
      turn,
      userNotifier,
      sfu,
      calls,
      publicBaseUrl,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** SFU facts become call-state changes: empty calls end, departures and media changes are announced. */
function wireCallEvents(sfu: SfuRegistry, calls: CallService, logger: Logger): void {
  const report = (what: string) => (error: unknown) => logger.error({ err: error }, `call event handling failed: ${what}`);
  sfu.on('empty', ({ callId }) => void calls.endBySystem(callId, 'empty').catch(report('empty')));
  sfu.on('peerleft', ({ callId, participantId }) => void calls.participantGone(callId, participantId).catch(report('peerleft')));
  sfu.on('peerjoined', ({ callId }) => void calls.announceUpdate(callId).catch(report('peerjoined')));
  sfu.on('producerschanged', ({ callId }) => void calls.announceUpdate(callId).catch(report('producerschanged')));
}
