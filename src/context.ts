import { join } from 'node:path';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Config } from './config/schema.ts';
import { createDatabase, pingDatabase, type Database } from './db/database.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded.ts';
import { migrateToLatest } from './db/migrate.ts';
import { createAuthenticator } from './identity/authenticator.ts';
import { UserCache } from './identity/user-cache.ts';
import { loadOrCreateApiKey, loadOrCreateSigningKey, signingKeyPath } from './identity/keys.ts';
import { TokenService } from './identity/tokens.ts';
import { UserService } from './identity/users.ts';
import { createMediaMetrics } from './media/metrics.ts';
import { WorkerPool } from './media/worker-pool.ts';
import { createStorage } from './storage/index.ts';
import { RoomService, SettingsService } from './calls/room/rooms.ts';
import { SignalingTokenService } from './calls/signaling-tokens.ts';
import { UserNotifierRelay } from './calls/ports.ts';
import { HostAvailability, LinkService } from './calls/paid/links.ts';
import { TurnService, createTurnMetrics, type TurnCredentialMinter } from './turn/index.ts';
import { SfuRegistry } from './sfu/index.ts';
import { AppError } from './shared/errors.ts';
import { IngressService, IngressSessions, createIngressMetrics, whepNegotiator, whipNegotiator } from './calls/ingress/index.ts';
import { CallService } from './calls/room/call-service.ts';
import { CallFacade } from './calls/facade.ts';
import { RoomCallKind } from './calls/room/room-kind.ts';
import { PaidCallKind } from './calls/paid/paid-kind.ts';
import { DirectCalls } from './calls/direct/direct-calls.ts';
import { VIDEOCHAT_EXPIRE, VideochatService } from './calls/direct/videochat-service.ts';
import { PaidCallService } from './calls/paid/paid-calls.ts';
import { PaidCallEvents } from './calls/paid/paid-call-events.ts';
import { PaidCallRecord } from './calls/paid/paid-call-record.ts';
import { BillingEngine } from './billing/engine.ts';
import { PaymentExecutor } from './billing/payments.ts';
import { SqlJobQueue, TaskRegistry, createJobPool, migrateJobs, startJobRunner, unlockAbandonedJobs } from './jobs/index.ts';
import { BILLING_PAYMENT, BILLING_TICK } from './billing/ports.ts';
import { reconcileBilling } from './billing/reconciler.ts';
import { createBillingMetrics } from './billing/metrics.ts';
import { createPaymentProvider } from './billing/providers/index.ts';
import type { PaymentProvider } from './billing/providers/types.ts';
import type { ObjectStorage } from './storage/types.ts';
import { ScaledClock, systemClock, type Clock } from './shared/clock.ts';
import { createLogger, type Logger } from './shared/logger.ts';
import { WEBHOOK_DELIVER, WebhookDeliverer, WebhookEndpointService, WebhookOutbox, createWebhookMetrics } from './webhooks/index.ts';
import { CallActivity, leftReasonOf } from './calls/activity.ts';
import { loadOrCreateSecretFile } from './shared/secrets.ts';
import { newId } from './shared/ids.ts';
import { BroadcastService, CHAT_BROADCAST, ChatService, ChatSinkRelay, FollowService, UploadService } from './chat/index.ts';
import { PaidLiveCalls } from './calls/paid/live-calls.ts';
import { RecordingService } from './recording/service.ts';
import { Spool } from './recording/spool.ts';
import { RecordingCapture } from './recording/capture.ts';
import { CapturePorts } from './recording/ports-allocator.ts';
import { RecordingPipeline } from './recording/pipeline.ts';
import { ffmpegTiedToParent } from './recording/ffmpeg.ts';
import { RECORDING_COMPOSE, RECORDING_TRANSCRIBE, RECORDING_UPLOAD } from './recording/ports.ts';

/** How often the recording spool's size is checked against its cap while recordings run. */
const SPOOL_CHECK_MS = 2000;

/** Every long-lived service, built in one place from config. Transports receive what they need from here. */
export interface AppContext {
  config: Readonly<Config>;
  /** This server process (a ULID per start): what holds its in-progress idempotency keys. */
  instanceId: string;
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
  /** Mints the TURN credentials handed out with every signaling token. */
  turn: TurnCredentialMinter;
  /** The TURN server of this node (docs/turn.md): its engine, URLs and address. */
  turnServer: TurnService;
  /** The live SFU state of this node's calls. */
  sfu: SfuRegistry;
  /** WHIP publish and WHEP playback sessions (docs/whip-whep.md). */
  ingress: IngressService;
  /** Calls of every kind: one facade, one handler per kind. */
  calls: CallFacade;
  /** Room calls' own service (initiate). */
  roomCalls: CallService;
  /** Domain → users' sockets; the realtime transport attaches itself at start-up. */
  userNotifier: UserNotifierRelay;
  /** Paid call links (README, "Paid link calls"). */
  links: LinkService;
  /** Hosts' availability: a live user socket and accepting_calls. */
  availability: HostAvailability;
  payments: PaymentProvider;
  billing: BillingEngine;
  paymentOps: PaymentExecutor;
  paidCalls: PaidCallService;
  paidCallEvents: PaidCallEvents;
  /** The direct videochat handshake on the user socket (docs/videochat.md). */
  videochat: VideochatService;
  /** SFU facts (joins, leaves, tracks, media) recorded as call events. */
  callActivity: CallActivity;
  /** Outbound webhooks: endpoints (admin API) and delivery. */
  webhookEndpoints: WebhookEndpointService;
  webhookDeliverer: WebhookDeliverer;
  /** Chat (docs/api.md, "Chat"): conversations and messages, files, follows, broadcasts. */
  chat: ChatService;
  chatUploads: UploadService;
  follows: FollowService;
  broadcasts: BroadcastService;
  /** Domain → chat sockets; the chat socket transport attaches itself at start-up. */
  chatSink: ChatSinkRelay;
  /** Recordings of calls (docs/recording.md): lifecycle, capture, composition, uploads, transcripts. */
  recordings: RecordingService;
  /** The live capture of recordings (ffmpeg per track). */
  recordingCapture: RecordingCapture;
  /** Where recordings wait until storage confirmed them. */
  spool: Spool;
  /** Set by the HTTP layer once it listens; storage signs local URLs against it. */
  publicBaseUrl: { value: string };
  close(): Promise<void>;
}

/** Tests replace parts (clock, logger, storage...) without touching the wiring. */
export interface ContextOverrides {
  clock?: Clock;
  logger?: Logger;
  storage?: ObjectStorage;
  /** Replaces the configured payment provider (tests: a TestPaymentProvider they can inspect). */
  payments?: PaymentProvider;
}

export async function createContext(config: Readonly<Config>, overrides: ContextOverrides = {}): Promise<AppContext> {
  const logger = overrides.logger ?? createLogger(config.log);
  const clock = overrides.clock ?? (config.clock.scale === 1 ? systemClock : new ScaledClock(config.clock.scale, Date.parse(config.clock.anchor!)));
  const instanceId = newId();
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
    const jobPool = createJobPool(databaseUrl, config.jobs.concurrency + 2, logger);
    cleanups.push(() => jobPool.end());
    await migrateJobs(jobPool, logger);
    await unlockAbandonedJobs(db, jobPool, logger);

    const registry = new Registry();
    // The event-loop lag histogram samples every 100 ms, not prom-client's 10 ms: an idle node wakes 10×/s, not 100×.
    collectDefaultMetrics({ register: registry, prefix: 'callplane_', eventLoopMonitoringPrecision: 100 });

    const apiKey = await loadOrCreateApiKey(config.data_dir, config.auth.api_key);
    logger.info({ source: apiKey.source }, 'operator API key (send as X-Api-Key)');
    const signingKey = await loadOrCreateSigningKey(signingKeyPath(config.data_dir, config.auth.signing_key_file), config.auth.signing_key_file === null);
    const tokens = new TokenService(signingKey, config.auth, clock);
    const users = new UserService(db, clock, new UserCache(db, config.auth.user_cache_ttl_ms));

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
    const turnServer = new TurnService(config, { secret: turnSecret, clock, logger, metrics: createTurnMetrics(registry), dataDir: config.data_dir });
    await turnServer.start();
    cleanups.push(() => turnServer.stop());
    const turn = turnServer.minter;
    const userNotifier = new UserNotifierRelay();
    const links = new LinkService(db, clock);
    const availability = new HostAvailability(db, userNotifier);

    const media = await WorkerPool.create(config.media, { logger, metrics: createMediaMetrics(registry) });
    cleanups.push(() => media.close());
    const sfu = new SfuRegistry({ pool: media, logger, calls: config.calls, iceServers: (identity) => turn.iceServers(identity.participantId), emptyCalls: 'report' });
    const sfuCleanup = (): Promise<void> => sfu.close();
    cleanups.push(sfuCleanup); // before the pool: calls end cleanly, then workers stop
    const jobs = new SqlJobQueue();
    const webhooks = config.webhooks;
    const outbox = new WebhookOutbox({ clock, jobs, logger, maxBodyBytes: webhooks.max_body_bytes });
    const webhookEndpoints = new WebhookEndpointService({ db, jobs, logger, allowPrivateTargets: webhooks.allow_private_targets });
    await webhookEndpoints.syncConfigured(webhooks.endpoints);
    // Deliveries read and write on connections of their own: a backlog never starves requests.
    const webhookDb = createDatabase(databaseUrl, Math.min(webhooks.concurrency + 1, 16));
    cleanups.push(() => webhookDb.destroy());
    const webhookDeliverer = new WebhookDeliverer({
      db: webhookDb,
      jobs,
      logger,
      metrics: createWebhookMetrics(registry, webhookEndpoints),
      settings: {
        attemptTimeoutMs: webhooks.attempt_timeout_ms,
        retry: { initialMs: webhooks.retry_initial_ms, maxMs: webhooks.retry_max_ms, giveUpAfterMs: webhooks.give_up_after_seconds * 1000 },
        concurrencyPerEndpoint: webhooks.concurrency_per_endpoint,
        allowPrivateTargets: webhooks.allow_private_targets,
        maxResponseBytes: webhooks.max_body_bytes,
      },
    });
    const spool = new Spool(config.recording.spool_dir!, config.recording.spool_max_bytes);
    const recordings = new RecordingService({ db, clock, logger: logger.child({ component: 'recording' }), rooms, settings, events: outbox, jobs, storage, urlTtlSeconds: config.recording.url_ttl_seconds, spool });
    const ffmpegPath = await ffmpegTiedToParent(config.recording.ffmpeg_path ?? 'ffmpeg', join(config.data_dir, 'bin'));
    const capture = new RecordingCapture({
      db,
      clock,
      logger: logger.child({ component: 'recording' }),
      media: sfu,
      spool,
      ports: new CapturePorts(config.recording.port_range),
      ffmpegPath,
      restartDelayMs: config.recording.restart_delay_ms,
      onCaptureFailed: (recordingId, detail) => void recordings.captureFailed(recordingId, detail).catch((error: unknown) => logger.error({ err: error, recordingId }, 'recording a capture failure failed')),
    });
    recordings.attachCapture(capture);
    sfu.on('trackpublished', ({ callId, ...track }) => capture.trackPublished(callId, track));
    sfu.on('trackunpublished', ({ callId, producerId }) => capture.trackUnpublished(callId, producerId));
    // The spool's cap (recording.spool_max_bytes) also holds while recording: running recordings stop when it is reached.
    const spoolWatch = setInterval(() => {
      const active = capture.active;
      if (active.length === 0) return;
      void spool
        .full()
        .then((full) => (full ? recordings.stopForFullSpool(active) : undefined))
        .catch((error: unknown) => logger.warn({ err: error }, 'recording spool check failed'));
    }, SPOOL_CHECK_MS);
    spoolWatch.unref();
    cleanups.push(() => clearInterval(spoolWatch));
    const roomCalls = new CallService({ db, clock, logger, rooms, tokens: signalingTokens, turn, media: sfu, notifier: userNotifier, events: outbox, recordings });

    // The in-process test provider keeps its holds in PostgreSQL on connections of its own: the payment
    // outbox holds a connection while it asks the provider, so a shared pool could starve it.
    let payments = overrides.payments;
    if (!payments) {
      const paymentsDb = config.payments.provider === 'test' ? createDatabase(databaseUrl, 4) : db;
      if (paymentsDb !== db) cleanups.push(() => paymentsDb.destroy());
      payments = createPaymentProvider(config.payments, clock, paymentsDb);
    }
    const billing = new BillingEngine({
      db,
      clock,
      logger,
      jobs,
      links: { reserveUse: (handle, linkId) => links.withDb(handle).reserveUse(linkId), releaseUse: (handle, linkId) => links.withDb(handle).releaseUse(linkId) },
      calls: new PaidCallRecord(outbox),
    });
    const paymentOps = new PaymentExecutor({ db, engine: billing, provider: payments, logger, metrics: createBillingMetrics(registry, db) });
    const paidCalls = new PaidCallService({
      db,
      clock,
      logger,
      engine: billing,
      payments: paymentOps,
      links,
      availability,
      tokens: signalingTokens,
      turn,
      media: sfu,
      settings: { joinTimeoutSeconds: config.payments.join_timeout_seconds, mediaGraceSeconds: config.payments.media_grace_seconds, platformFeeBps: config.payments.platform_fee_bps },
    });
    const paidCallEvents = new PaidCallEvents({ db, clock, logger, engine: billing, jobs, paid: paidCalls, media: sfu, notifier: userNotifier, mediaGraceSeconds: config.payments.media_grace_seconds });
    billing.listen(paidCallEvents);
    const directCalls = new DirectCalls({ db, clock, tokens: signalingTokens, turn, media: sfu, notifier: userNotifier, events: outbox });
    const videochat = new VideochatService({ db, clock, logger, jobs, notifier: userNotifier, calls: directCalls, signalingUrl: () => `${publicBaseUrl.value.replace(/^http/, 'ws')}/v1/signal` });
    const calls = new CallFacade({ db, tokens: signalingTokens }, [new RoomCallKind(roomCalls), new PaidCallKind(paidCalls, roomCalls), directCalls]);
    const callActivity = new CallActivity({ db, clock, outbox, dtlsStates: (callId) => sfu.dtlsStates(callId) });
    wireCallEvents(sfu, calls, paidCallEvents, callActivity, logger);
    // WHIP/WHEP sessions: participants without a socket (docs/whip-whep.md); closed before the SFU.
    const ingressSessions = new IngressSessions({
      sfu,
      resolveToken: (token) => calls.resolveSignalingToken(token),
      admission: (callId) => calls.admission(callId),
      logger,
      connectTimeoutMs: (config.calls.ingress_connect_timeout_seconds ?? 15) * 1000,
    });
    createIngressMetrics(registry, ingressSessions);
    cleanups.push(() => ingressSessions.close());
    const ingress = new IngressService(ingressSessions, { whip: whipNegotiator, whep: whepNegotiator }, async (callId) => {
      const main = (await sfu.session(callId)).main;
      if (!main) throw new AppError('media_unavailable', 'The call has no media router right now: retry');
      return main.rtpCapabilities;
    });
    // A call's end stops its recording (a shutdown too: what was captured is composed at the next start).
    const recordingStops = new Set<Promise<void>>();
    sfu.on('callclosed', ({ callId, reason }) => {
      const stopping = recordings
        .callEnded(callId, reason === 'server shutting down' ? 'shutdown' : 'call_ended')
        .catch((error: unknown) => logger.error({ err: error, callId }, 'stopping the recording of an ended call failed'))
        .finally(() => recordingStops.delete(stopping));
      recordingStops.add(stopping);
    });
    // After the SFU closed (cleanups run in reverse): the stops it caused are recorded before the database closes.
    // Graceful shutdown: the SFU's close stops every recording (shutdown), its recorders finish their
    // files; this waits for that, before storage and the database close.
    cleanups.splice(cleanups.indexOf(sfuCleanup), 0, async () => {
      await Promise.all([...recordingStops]);
      await capture.stopAll();
    });

    const chatSink = new ChatSinkRelay();
    const chatUploads = new UploadService({
      db,
      clock,
      storage,
      newId,
      limits: { maxFileBytes: config.chat.max_file_bytes, allowedFileTypes: config.chat.allowed_file_types, urlTtlSeconds: config.chat.upload_url_ttl_seconds },
    });
    const chat = new ChatService({ db, clock, logger: logger.child({ component: 'chat' }), sink: chatSink, liveCalls: new PaidLiveCalls(db), uploads: chatUploads, typingIntervalMs: config.chat.typing_interval_ms });
    const follows = new FollowService({ db, clock });
    const broadcasts = new BroadcastService({ db, clock, logger: logger.child({ component: 'chat' }), jobs, chat, batchSize: config.chat.broadcast_batch_size });

    // Before any job runs: gaps are opened for calls the restart cut off, so that a window boundary
    // that fell due while the server was down waits for the gap's outcome instead of capturing.
    await recordings.reconcile();
    await reconcileBilling({ db, clock, logger, engine: billing, jobs, openMediaGap: (callId, at) => paidCallEvents.openGap(callId, at) });
    // Every module registers its tasks here, before the runner starts.
    const tasks = new TaskRegistry();
    tasks.register(BILLING_TICK, (job) => paidCallEvents.tick(job));
    tasks.register(BILLING_PAYMENT, async (job) => void (await paymentOps.run(job.key)));
    tasks.register(CHAT_BROADCAST, (job) => broadcasts.deliver(job.broadcastId));
    tasks.register(VIDEOCHAT_EXPIRE, (job) => videochat.expire(job.requestId));
    const pipeline = new RecordingPipeline({ db, clock, logger: logger.child({ component: 'recording' }), jobs, storage, spool, capture, recordings, config: { ...config.recording, ffmpeg_path: ffmpegPath } });
    tasks.register(RECORDING_COMPOSE, (job) => pipeline.compose(job));
    tasks.register(RECORDING_TRANSCRIBE, (job) => pipeline.transcribe(job));
    tasks.register(RECORDING_UPLOAD, (job) => pipeline.upload(job));
    const runner = await startJobRunner({
      pgPool: jobPool,
      concurrency: config.jobs.concurrency,
      pollIntervalMs: config.jobs.poll_interval_ms,
      logger,
      tasks,
    });
    // Before the pool and the database close: running jobs finish, no new ones start.
    cleanups.push(() => runner.stop());
    // Webhook deliveries run on a runner of their own: a slow receiver never delays a billing job.
    const webhookPool = createJobPool(databaseUrl, webhooks.concurrency + 2, logger);
    cleanups.push(() => webhookPool.end());
    const webhookTasks = new TaskRegistry();
    webhookTasks.register(WEBHOOK_DELIVER, (stream) => webhookDeliverer.drain(stream));
    const webhookRunner = await startJobRunner({ pgPool: webhookPool, concurrency: webhooks.concurrency, pollIntervalMs: config.jobs.poll_interval_ms, logger, tasks: webhookTasks });
    // Shutdown: attempts in flight are cut off and released (delivered again at the next start).
    cleanups.push(() => webhookRunner.stop());
    cleanups.push(() => webhookDeliverer.stop());
    // The SFU facts reported before the shutdown are recorded before the database closes.
    cleanups.push(() => callActivity.idle());
    paidCallEvents.startHeartbeat();
    // Graceful stop: a last heartbeat, so calls interrupted by the restart are billed up to now.
    cleanups.push(() => paidCallEvents.stopHeartbeat());

    return {
      config,
      instanceId,
      logger,
      clock,
      registry,
      db,
      databaseUrl,
      apiKey,
      tokens,
      users,
      authenticate: createAuthenticator(apiKey.key, tokens, users.cache),
      media,
      storage,
      urlSigningSecret,
      rooms,
      settings,
      signalingTokens,
      turn,
      turnServer,
      userNotifier,
      links,
      availability,
      payments,
      billing,
      paymentOps,
      paidCalls,
      paidCallEvents,
      callActivity,
      videochat,
      webhookEndpoints,
      webhookDeliverer,
      recordings,
      recordingCapture: capture,
      spool,
      sfu,
      ingress,
      calls,
      roomCalls,
      chat,
      chatUploads,
      follows,
      broadcasts,
      chatSink,
      publicBaseUrl,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * SFU facts become call-state changes: empty calls end, departures and media changes are announced;
 * paid calls follow DTLS; joins, leaves, tracks and media are recorded as call events (webhooks).
 */
function wireCallEvents(sfu: SfuRegistry, calls: CallFacade, paid: PaidCallEvents, activity: CallActivity, logger: Logger): void {
  const report = (what: string) => (error: unknown) => logger.error({ err: error }, `call event handling failed: ${what}`);
  sfu.on('empty', ({ callId }) => void calls.emptied(callId).catch(report('empty')));
  sfu.on('peerleft', ({ callId, participantId, reason }) => {
    void activity.participantLeft(callId, participantId, leftReasonOf(reason)).catch(report('peerleft (events)'));
    void calls.participantGone(callId, participantId).catch(report('peerleft'));
    void paid.mediaChanged(callId).catch(report('peerleft (paid)'));
  });
  sfu.on('peerjoined', ({ callId, participantId }) => {
    void activity.participantJoined(callId, participantId).catch(report('peerjoined (events)'));
    void calls.changed(callId).catch(report('peerjoined'));
  });
  sfu.on('trackpublished', ({ callId, ...track }) => void activity.track(callId, 'published', track).catch(report('trackpublished')));
  sfu.on('trackunpublished', ({ callId, ...track }) => void activity.track(callId, 'unpublished', track).catch(report('trackunpublished')));
  sfu.on('producerschanged', ({ callId }) => void calls.changed(callId).catch(report('producerschanged')));
  sfu.on('permissionschanged', ({ participantId, permissions }) => void calls.permissionsChanged(participantId, { ...permissions }).catch(report('permissionschanged')));
  const mediaChanged = (what: string) => ({ callId }: { callId: string }) => {
    void paid.mediaChanged(callId).catch(report(what));
    void activity.mediaChanged(callId).catch(report(`${what} (events)`));
  };
  sfu.on('transportconnected', mediaChanged('transportconnected'));
  sfu.on('transportdisconnected', mediaChanged('transportdisconnected'));
  sfu.on('mediainterrupted', mediaChanged('mediainterrupted'));
}
