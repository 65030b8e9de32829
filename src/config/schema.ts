import { Type, type Static } from '@sinclair/typebox';
import type { DemoDecision } from './demo.ts';

/**
 * The whole configuration, in the snake_case of config/default.yaml.
 * Every object is closed (additionalProperties: false) so a misspelt key is an error, not a silent default.
 */
const closed = { additionalProperties: false } as const;
const Port = Type.Integer({ minimum: 0, maximum: 65535 });
const NullableString = Type.Union([Type.String({ minLength: 1 }), Type.Null()]);

export const HttpConfigSchema = Type.Object(
  {
    host: Type.String({ minLength: 1 }),
    port: Port,
    public_url: NullableString,
    max_body_bytes: Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024 }),
    trust_proxy: Type.Boolean(),
  },
  closed,
);

export const DatabaseConfigSchema = Type.Object(
  {
    url: NullableString,
    embedded_port: Port,
    pool_size: Type.Integer({ minimum: 1, maximum: 200 }),
  },
  closed,
);

export const ExternalJwksSchema = Type.Object(
  {
    url: Type.String({ format: 'uri', minLength: 1 }),
    issuer: Type.String({ minLength: 1 }),
    audience: Type.String({ minLength: 1 }),
  },
  closed,
);

export const AuthConfigSchema = Type.Object(
  {
    api_key: NullableString,
    issuer: Type.String({ minLength: 1 }),
    token_ttl_seconds: Type.Integer({ minimum: 60 }),
    max_token_ttl_seconds: Type.Integer({ minimum: 60 }),
    signing_key_file: NullableString,
    external_jwks: Type.Union([ExternalJwksSchema, Type.Null()]),
    /** Verified access tokens kept in memory (LRU), so a repeated token skips the signature check. 0: no cache. */
    token_cache_size: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
    /** How long a user's row read for authentication and /v1/users/me is reused; other nodes' changes show within it. 0: always read. */
    user_cache_ttl_ms: Type.Integer({ minimum: 0, maximum: 600_000 }),
  },
  closed,
);

export const MediaConfigSchema = Type.Object(
  {
    workers: Type.Integer({ minimum: 0, maximum: 256 }),
    port_base: Type.Integer({ minimum: 1, maximum: 65000 }),
    listen_ip: Type.String({ minLength: 1 }),
    announced_address: NullableString,
    max_consumers_per_worker: Type.Integer({ minimum: 1 }),
    /** Least spacing of key-frame requests sent to a video publisher; see docs/architecture.md "Key frames". 0: none. */
    key_frame_request_delay_ms: Type.Integer({ minimum: 0, maximum: 5000 }),
    worker_log_level: Type.Union([Type.Literal('debug'), Type.Literal('warn'), Type.Literal('error'), Type.Literal('none')]),
    worker_bin: NullableString,
  },
  closed,
);

export const S3ConfigSchema = Type.Object(
  {
    endpoint: NullableString,
    region: Type.String({ minLength: 1 }),
    bucket: Type.String({ minLength: 1 }),
    access_key_id: NullableString,
    secret_access_key: NullableString,
    force_path_style: Type.Boolean(),
  },
  closed,
);

export const StorageConfigSchema = Type.Object(
  {
    driver: Type.Union([Type.Literal('local'), Type.Literal('s3')]),
    local_dir: NullableString,
    signed_url_ttl_seconds: Type.Integer({ minimum: 1, maximum: 7 * 24 * 3600 }),
    s3: S3ConfigSchema,
  },
  closed,
);

export const RateLimitRuleSchema = Type.Object(
  {
    per_ip: Type.Integer({ minimum: 1 }),
    per_user: Type.Integer({ minimum: 1 }),
    window_seconds: Type.Integer({ minimum: 1 }),
  },
  closed,
);

export const RateLimitsConfigSchema = Type.Object(
  {
    enabled: Type.Boolean(),
    token: RateLimitRuleSchema,
    guest: RateLimitRuleSchema,
    initiate: RateLimitRuleSchema,
  },
  closed,
);

export const CallsConfigSchema = Type.Object(
  {
    /** A call with no connected participant for this long ends by itself. */
    empty_timeout_seconds: Type.Integer({ minimum: 1, maximum: 3600 }),
    /** A participant whose signaling socket dropped keeps its identity this long (then peer_left). */
    reconnect_grace_seconds: Type.Integer({ minimum: 1, maximum: 600 }),
    /** Lifetime of a signaling token (single use). */
    signaling_token_ttl_seconds: Type.Integer({ minimum: 10, maximum: 3600 }),
    /** Signaling messages a socket may send per second (burst of twice that) before it is closed for flooding. */
    signaling_messages_per_second: Type.Integer({ minimum: 1, maximum: 10000 }),
    /** A WHIP/WHEP session whose transport has not connected (ICE + DTLS) this long after its answer is closed. */
    ingress_connect_timeout_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 600 })),
  },
  closed,
);

/** null (the default): decided from http.host and payments.provider after layering (resolveDemo). */
export const DemoConfigSchema = Type.Object({ enabled: Type.Union([Type.Boolean(), Type.Null()]) }, closed);

export const TurnConfigSchema = Type.Object(
  {
    /** embedded: node-turn (patched) in this process, UDP; coturn: Debian's turnserver, supervised; off: no TURN server. */
    engine: Type.Union([Type.Literal('embedded'), Type.Literal('coturn'), Type.Literal('off')]),
    /** An operator's own TURN URLs (e.g. ["turns:turn.example.com:5349"]); non-empty: no engine runs and clients get these. */
    external: Type.Array(Type.String({ pattern: '^turns?:' })),
    /** Shared secret of the TURN REST API credentials. null: generated into <data_dir>/keys/turn-secret. */
    secret: NullableString,
    credential_ttl_seconds: Type.Integer({ minimum: 60, maximum: 7 * 86400 }),
    realm: Type.String({ minLength: 1, maxLength: 127 }),
    listen_ip: Type.String({ minLength: 1 }),
    port: Port,
    /** Address relay sockets bind to. null: listen_ip. */
    relay_ip: NullableString,
    /** Address in the TURN URLs and relayed addresses. null: media.announced_address, else the listen address (127.0.0.1 for 0.0.0.0). */
    announced_address: NullableString,
    relay_port_min: Type.Integer({ minimum: 1024, maximum: 65535 }),
    relay_port_max: Type.Integer({ minimum: 1024, maximum: 65535 }),
    /** Live allocations per participant. */
    user_quota: Type.Integer({ minimum: 1, maximum: 1000 }),
    /** Let relays reach loopback, link-local and private addresses other than this node's media ports. */
    allow_private_peers: Type.Boolean(),
    /** coturn only: TLS listener (turns:) when both files are set. */
    tls_port: Port,
    tls_cert_file: NullableString,
    tls_key_file: NullableString,
    /** coturn only: the turnserver binary. */
    coturn_bin: Type.String({ minLength: 1 }),
  },
  closed,
);

export const PaymentsConfigSchema = Type.Object(
  {
    provider: Type.Union([Type.Literal('test'), Type.Literal('stripe')]),
    stripe_secret_key: NullableString,
    /** Signing secret of the Stripe webhook endpoint (whsec_...); null: POST /v1/webhooks/stripe answers 503. */
    stripe_webhook_secret: NullableString,
    /** Where the Stripe API lives; null: api.stripe.com. Only for a Stripe-compatible server (tests). */
    stripe_api_base: Type.Union([Type.String({ pattern: '^https?://[^/]+$' }), Type.Null()]),
    /** Per-attempt timeout of a Stripe request. */
    stripe_timeout_ms: Type.Integer({ minimum: 100, maximum: 120000 }),
    /** Platform fee of Connect destination charges, in basis points (100 = 1 %). */
    platform_fee_bps: Type.Integer({ minimum: 0, maximum: 10000 }),
    /** A waiting paid call is cancelled when the host has not joined within this long. */
    join_timeout_seconds: Type.Integer({ minimum: 5, maximum: 3600 }),
    /** An active paid call ends when media has been gone this long; it is billed up to when media stopped. */
    media_grace_seconds: Type.Integer({ minimum: 1, maximum: 600 }),
  },
  closed,
);

export const WebhookEndpointConfigSchema = Type.Object(
  {
    url: Type.String({ format: 'uri', pattern: '^https?://' }),
    /** Standard Webhooks secret: whsec_ + base64 of at least 24 bytes. */
    secret: Type.String({ pattern: '^whsec_[A-Za-z0-9+/]{32,}={0,2}$' }),
    /** Event names the endpoint receives (docs/webhooks.md); absent or empty: every event. */
    events: Type.Optional(Type.Array(Type.String({ pattern: '^[a-z]+\\.[a-z_]+$' }), { uniqueItems: true })),
    description: Type.Optional(Type.String({ maxLength: 500 })),
  },
  closed,
);

export const WebhooksConfigSchema = Type.Object(
  {
    endpoints: Type.Array(WebhookEndpointConfigSchema),
    /** Allow endpoint URLs that resolve to loopback, link-local or private addresses (tests, a LAN receiver). */
    allow_private_targets: Type.Boolean(),
    /** No answer within this long is a failed attempt. */
    attempt_timeout_ms: Type.Integer({ minimum: 100, maximum: 60000 }),
    /** First retry after this long, doubling up to retry_max_ms, for give_up_after_seconds. */
    retry_initial_ms: Type.Integer({ minimum: 10, maximum: 3600_000 }),
    retry_max_ms: Type.Integer({ minimum: 10, maximum: 24 * 3600_000 }),
    give_up_after_seconds: Type.Integer({ minimum: 1, maximum: 30 * 86400 }),
    /** Deliveries in flight at once: webhook jobs run on a runner of their own, never delaying billing jobs. */
    concurrency: Type.Integer({ minimum: 1, maximum: 256 }),
    /** Deliveries in flight to one endpoint at once (each call's events still go one at a time). */
    concurrency_per_endpoint: Type.Integer({ minimum: 1, maximum: 256 }),
    /** Largest event body (bytes) and largest part of a receiver's answer that is read. */
    max_body_bytes: Type.Integer({ minimum: 1024, maximum: 1024 * 1024 }),
  },
  closed,
);

export const JobsConfigSchema = Type.Object(
  {
    /** Billing jobs (window ticks, holds, captures, releases, timeouts) run concurrently up to this many. */
    concurrency: Type.Integer({ minimum: 1, maximum: 64 }),
    /** How often the job runner looks for jobs that became due (new jobs are also pushed at once). */
    poll_interval_ms: Type.Integer({ minimum: 50, maximum: 60000 }),
  },
  closed,
);

/** Chat (docs/chat.md): message and file limits, the chat socket's rates, broadcast batches. */
export const ChatConfigSchema = Type.Object(
  {
    /** Longest message body, in characters. */
    max_message_chars: Type.Integer({ minimum: 1, maximum: 100000 }),
    /** Largest file an upload may declare; larger: 413 payload_too_large. */
    max_file_bytes: Type.Integer({ minimum: 1, maximum: 5 * 1024 * 1024 * 1024 }),
    /** MIME types a file may have: exact ("application/pdf") or a whole family ("image/*"). */
    allowed_file_types: Type.Array(Type.String({ pattern: '^[a-z0-9.+-]+/([a-z0-9.+-]+|\\*)$' }), { minItems: 1 }),
    /** How long an upload's signed PUT URL is valid (the file must be uploaded within this). */
    upload_url_ttl_seconds: Type.Integer({ minimum: 30, maximum: 7 * 24 * 3600 }),
    /** Frames a chat socket may send per second (bursts of twice that) before it is closed with 4008. */
    socket_messages_per_second: Type.Integer({ minimum: 1, maximum: 10000 }),
    /** A user's typing indicator in one conversation is relayed at most once per this many ms; more are dropped. */
    typing_interval_ms: Type.Integer({ minimum: 0, maximum: 600000 }),
    /** Followers a broadcast job delivers to per transaction. */
    broadcast_batch_size: Type.Integer({ minimum: 1, maximum: 10000 }),
  },
  closed,
);

/** Recording (docs/recording.md): capture ports, the spool, composition, uploads, transcription. */
export const RecordingConfigSchema = Type.Object(
  {
    /** 127.0.0.1 UDP ports of the capture: ffmpeg's RTP and RTCP ports and mediasoup's PlainTransport port, 4 per track. */
    port_range: Type.Object({ min: Type.Integer({ minimum: 1024, maximum: 65535 }), max: Type.Integer({ minimum: 1024, maximum: 65535 }) }, closed),
    /** Where raw tracks and composed files wait until storage confirmed them. null: <data_dir>/spool. */
    spool_dir: NullableString,
    /** No new recording starts (and running ones stop) while the spool holds this many bytes. */
    spool_max_bytes: Type.Integer({ minimum: 1024 * 1024 }),
    /** Lifetime of the signed download URLs in GET /v1/calls/{id}/recordings. */
    url_ttl_seconds: Type.Integer({ minimum: 1, maximum: 7 * 24 * 3600 }),
    /** ffmpeg and ffprobe binaries; null: from PATH (Debian's ffmpeg package). */
    ffmpeg_path: NullableString,
    ffprobe_path: NullableString,
    /** A capture ffmpeg that died is restarted after this delay, as a new segment. */
    restart_delay_ms: Type.Integer({ minimum: 0, maximum: 60000 }),
    /** Uploads that fail (storage down) are retried from this delay, doubling up to retry_max_ms. */
    upload_retry_initial_ms: Type.Integer({ minimum: 100 }),
    upload_retry_max_ms: Type.Integer({ minimum: 100 }),
    compose: Type.Object(
      {
        width: Type.Integer({ minimum: 16, maximum: 3840, multipleOf: 2 }),
        height: Type.Integer({ minimum: 16, maximum: 2160, multipleOf: 2 }),
        fps: Type.Integer({ minimum: 1, maximum: 60 }),
        /** x264 preset: faster presets use less CPU for a bigger file. */
        preset: Type.Union(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium'].map((p) => Type.Literal(p))),
        crf: Type.Integer({ minimum: 0, maximum: 51 }),
        audio_bitrate_kbps: Type.Integer({ minimum: 16, maximum: 512 }),
      },
      closed,
    ),
    transcription: Type.Object(
      {
        /** An endpoint speaking the OpenAI audio transcription API (POST multipart file + model); null: transcripts fail with not_configured. */
        url: NullableString,
        api_key: NullableString,
        model: Type.String({ minLength: 1 }),
        timeout_ms: Type.Integer({ minimum: 1000 }),
      },
      closed,
    ),
  },
  closed,
);

/**
 * Testing and demos only: time runs `scale` times faster than the wall clock (from `anchor`, so a
 * restarted process continues the same timeline). Billing windows, timeouts and token lifetimes all follow it.
 */
export const ClockConfigSchema = Type.Object(
  {
    scale: Type.Number({ minimum: 1, maximum: 3600 }),
    anchor: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  closed,
);

export const LogConfigSchema = Type.Object(
  {
    level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l))),
    pretty: Type.Union([Type.Boolean(), Type.Literal('auto')]),
  },
  closed,
);

export const ConfigSchema = Type.Object(
  {
    data_dir: Type.String({ minLength: 1 }),
    http: HttpConfigSchema,
    database: DatabaseConfigSchema,
    auth: AuthConfigSchema,
    media: MediaConfigSchema,
    storage: StorageConfigSchema,
    rate_limits: RateLimitsConfigSchema,
    calls: CallsConfigSchema,
    demo: DemoConfigSchema,
    turn: TurnConfigSchema,
    payments: PaymentsConfigSchema,
    jobs: JobsConfigSchema,
    webhooks: WebhooksConfigSchema,
    chat: ChatConfigSchema,
    recording: RecordingConfigSchema,
    clock: ClockConfigSchema,
    log: LogConfigSchema,
    shutdown_grace_seconds: Type.Integer({ minimum: 0, maximum: 600 }),
  },
  closed,
);

/** The configuration as the layers give it: what ConfigSchema validates. */
export type ConfigInput = Static<typeof ConfigSchema>;
/** The configuration loadConfig returns: the input with derived values resolved (the demo sign-in decided). */
export type Config = Omit<ConfigInput, 'demo'> & { demo: DemoDecision };
export type HttpConfig = Static<typeof HttpConfigSchema>;
export type DatabaseConfig = Static<typeof DatabaseConfigSchema>;
export type AuthConfig = Static<typeof AuthConfigSchema>;
export type MediaConfig = Static<typeof MediaConfigSchema>;
export type StorageConfig = Static<typeof StorageConfigSchema>;
export type RateLimitRule = Static<typeof RateLimitRuleSchema>;
export type RateLimitsConfig = Static<typeof RateLimitsConfigSchema>;
export type CallsConfig = Static<typeof CallsConfigSchema>;
export type TurnConfig = Static<typeof TurnConfigSchema>;
export type PaymentsConfig = Static<typeof PaymentsConfigSchema>;
export type JobsConfig = Static<typeof JobsConfigSchema>;
export type WebhooksConfig = Static<typeof WebhooksConfigSchema>;
export type ChatConfig = Static<typeof ChatConfigSchema>;
export type RecordingConfig = Static<typeof RecordingConfigSchema>;
export type ClockConfig = Static<typeof ClockConfigSchema>;
export type LogConfig = Static<typeof LogConfigSchema>;
