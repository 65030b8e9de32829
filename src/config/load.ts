import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Value } from '@sinclair/typebox/value';
import { TypeGuard, type TSchema } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import { ConfigSchema, type Config, type ConfigInput } from './schema.ts';
import { resolveDemo } from './demo.ts';

export const DEFAULT_CONFIG_FILE = join(dirname(fileURLToPath(import.meta.url)), '../../config/default.yaml');

/** Raised when configuration is invalid; `problems` has one line per bad key. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Short environment names fixed by the spec, and where they land. */
const FIXED_ENV: Record<string, string[]> = {
  CALLPLANE_HTTP_PORT: ['http', 'port'],
  CALLPLANE_DATA_DIR: ['data_dir'],
  CALLPLANE_API_KEY: ['auth', 'api_key'],
  CALLPLANE_PAYMENTS: ['payments', 'provider'],
  DATABASE_URL: ['database', 'url'],
  STRIPE_SECRET_KEY: ['payments', 'stripe_secret_key'],
  STRIPE_WEBHOOK_SECRET: ['payments', 'stripe_webhook_secret'],
};
/** CALLPLANE_* variables that are not settings. CALLPLANE_SKIP_APT is the setup script's, and the Docker image sets it for good. */
const NON_SETTING_ENV = new Set(['CALLPLANE_CONFIG', 'CALLPLANE_SKIP_APT']);
const NON_SETTING_PREFIXES = ['CALLPLANE_TEST_', 'CALLPLANE_BENCH_'];

type Json = Record<string, unknown>;

function isPlainObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepMerge(base: Json, override: Json): Json {
  const out: Json = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

function readYaml(file: string, problems: string[]): Json {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    problems.push(`${file}: cannot read (${(error as Error).message})`);
    return {};
  }
  try {
    const parsed: unknown = parseYaml(text);
    if (parsed === null || parsed === undefined) return {};
    if (!isPlainObject(parsed)) {
      problems.push(`${file}: top level must be a mapping`);
      return {};
    }
    return parsed;
  } catch (error) {
    problems.push(`${file}: not valid YAML (${(error as Error).message.split('\n')[0]})`);
    return {};
  }
}

/** Every leaf path of the schema, as env-style names: ['media','port_base'] → MEDIA_PORT_BASE. */
function leafPaths(schema: TSchema, prefix: string[] = []): string[][] {
  if (TypeGuard.IsObject(schema)) {
    return Object.entries(schema.properties).flatMap(([key, child]) => leafPaths(child, [...prefix, key]));
  }
  return [prefix];
}

function schemaAt(path: string[]): TSchema | undefined {
  let schema: TSchema | undefined = ConfigSchema;
  for (const key of path) {
    if (!schema || !TypeGuard.IsObject(schema)) return undefined;
    schema = schema.properties[key];
  }
  return schema;
}

/** Turns an env string into the JSON value the schema at `path` expects. */
function parseEnvValue(raw: string, path: string[]): unknown {
  const trimmed = raw.trim();
  if (trimmed === 'null' || trimmed === '') return null;
  const schema = schemaAt(path);
  const accepts = (kind: string): boolean =>
    schema !== undefined && (schema.type === kind || (Array.isArray(schema.anyOf) && schema.anyOf.some((s: TSchema) => s.type === kind)));
  if ((accepts('integer') || accepts('number')) && /^-?\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  if (accepts('boolean') && (trimmed === 'true' || trimmed === 'false')) return trimmed === 'true';
  if ((accepts('object') && trimmed.startsWith('{')) || (accepts('array') && trimmed.startsWith('['))) {
    try {
      return JSON.parse(trimmed);
    } catch {
      return raw;
    }
  }
  return raw;
}

function setPath(target: Json, path: string[], value: unknown): void {
  let node = target;
  path.slice(0, -1).forEach((key) => {
    if (!isPlainObject(node[key])) node[key] = {};
    node = node[key] as Json;
  });
  node[path[path.length - 1]!] = value;
}

function envOverrides(env: NodeJS.ProcessEnv, problems: string[]): Json {
  const byName = new Map<string, string[]>();
  for (const path of leafPaths(ConfigSchema)) byName.set(`CALLPLANE_${path.join('_').toUpperCase()}`, path);
  for (const [name, path] of Object.entries(FIXED_ENV)) byName.set(name, path);

  const out: Json = {};
  for (const [name, raw] of Object.entries(env)) {
    if (raw === undefined) continue;
    const path = byName.get(name);
    if (path) {
      setPath(out, path, parseEnvValue(raw, path));
    } else if (name.startsWith('CALLPLANE_') && !NON_SETTING_ENV.has(name) && !NON_SETTING_PREFIXES.some((p) => name.startsWith(p))) {
      problems.push(`${name}: unknown setting (no such key in config/default.yaml)`);
    }
  }
  return out;
}

function describeErrors(candidate: unknown): string[] {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const error of Value.Errors(ConfigSchema, candidate)) {
    const key = error.path.replace(/^\//, '').replaceAll('/', '.') || '(root)';
    if (seen.has(key)) continue; // one line per key: the first reason is the useful one
    seen.add(key);
    const shown = error.value === undefined ? 'missing' : JSON.stringify(error.value);
    const literals = Array.isArray(error.schema.anyOf) && error.schema.anyOf.every((s: TSchema) => s.const !== undefined) ? (error.schema.anyOf as TSchema[]).map((s) => String(s.const)) : null;
    const reason = literals ? `must be one of ${literals.join(", ")}` : error.schema.additionalProperties === false && error.message.includes('additional')
      ? 'unknown key'
      : error.message.toLowerCase();
    lines.push(`${key}: ${reason} (got ${shown})`);
  }
  return lines;
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** Extra settings merged last: used by tests and the CLI. */
  overrides?: Json;
  cwd?: string;
}

/** Loads defaults + operator file + env, validates, resolves derived values, and freezes. */
export function loadConfig(options: LoadConfigOptions = {}): Readonly<Config> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const problems: string[] = [];

  let merged = readYaml(DEFAULT_CONFIG_FILE, problems);
  const operatorFile = env.CALLPLANE_CONFIG;
  if (operatorFile) merged = deepMerge(merged, readYaml(resolve(cwd, operatorFile), problems));
  merged = deepMerge(merged, envOverrides(env, problems));
  if (options.overrides) merged = deepMerge(merged, options.overrides);

  problems.push(...describeErrors(merged));
  if (problems.length > 0) throw new ConfigError(problems);
  const config = merged as ConfigInput;

  const semantic: string[] = [];
  if (config.auth.max_token_ttl_seconds < config.auth.token_ttl_seconds) {
    semantic.push('auth.max_token_ttl_seconds: must be at least auth.token_ttl_seconds');
  }
  if (config.payments.provider === 'stripe' && !config.payments.stripe_secret_key) {
    semantic.push('payments.stripe_secret_key: required when payments.provider is stripe (or set STRIPE_SECRET_KEY)');
  }
  if (config.clock.scale !== 1 && config.clock.anchor === null) {
    semantic.push('clock.anchor: required when clock.scale is not 1 (a restarted server must continue the same timeline)');
  }
  if (config.storage.driver === 's3' && config.storage.s3.endpoint !== null && !/^https?:\/\//.test(config.storage.s3.endpoint)) {
    semantic.push(`storage.s3.endpoint: must be an http(s) URL (got ${JSON.stringify(config.storage.s3.endpoint)})`);
  }
  if (config.media.port_base + Math.max(config.media.workers, 1) > 65535) {
    semantic.push('media.port_base: port_base + workers exceeds 65535');
  }
  if (config.turn.relay_port_min > config.turn.relay_port_max) {
    semantic.push('turn.relay_port_min: must not exceed turn.relay_port_max');
  }
  if ((config.turn.tls_cert_file === null) !== (config.turn.tls_key_file === null)) {
    semantic.push('turn.tls_cert_file, turn.tls_key_file: set both or neither');
  }
  if (config.recording.port_range.max - config.recording.port_range.min + 1 < 4) {
    semantic.push('recording.port_range: needs at least 4 ports (min..max), 4 per recorded track');
  }
  if (config.recording.upload_retry_initial_ms > config.recording.upload_retry_max_ms) {
    semantic.push('recording.upload_retry_initial_ms: must not exceed recording.upload_retry_max_ms');
  }
  if (semantic.length > 0) throw new ConfigError(semantic);

  const dataDir = isAbsolute(config.data_dir) ? config.data_dir : resolve(cwd, config.data_dir);
  const resolved: Config = {
    ...config,
    data_dir: dataDir,
    media: { ...config.media, workers: config.media.workers === 0 ? cpus().length : config.media.workers },
    storage: { ...config.storage, local_dir: config.storage.local_dir ? resolve(cwd, config.storage.local_dir) : join(dataDir, 'storage') },
    recording: { ...config.recording, spool_dir: config.recording.spool_dir ? resolve(cwd, config.recording.spool_dir) : join(dataDir, 'spool') },
    // Only now, with every layer merged, is it known whether demo.enabled was set at all (null: not).
    demo: resolveDemo(config.demo.enabled, config.http, config.payments),
  };
  return deepFreeze(resolved);
}

function deepFreeze<T>(value: T): Readonly<T> {
  if (isPlainObject(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
