import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { DEFAULT_CONTENT_TYPE, validateKey, validatePrefix, validateTtl } from './keys.ts';
import { encodeLocalStoragePath, signLocal, verifyLocalSignature, type SignedMethod } from './local-signing.ts';
import type {
  ObjectEntry,
  ObjectHead,
  ObjectStorage,
  PutBody,
  PutOptions,
  SignedGetOptions,
  SignedPutOptions,
  StorageCheck,
  UploadBody,
  UploadOptions,
} from './types.ts';

export * from './local-signing.ts';

export interface LocalStorageOptions {
  rootDir: string;
  /** HMAC key of signed URLs; the HTTP route must verify with the same one. */
  signingSecret: string;
  /** Read at signing time, because the HTTP port may only be known once the server listens. */
  publicBaseUrl: () => string;
  signedUrlTtlSeconds: number;
  logger: Logger;
}

const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
const NOT_FOUND_CODES = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);
const CONFLICT_CODES = new Set(['ENOTDIR', 'EISDIR', 'EEXIST', 'ENOTEMPTY']);

function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/**
 * Objects live in <root>/objects/<key>, their content type in <root>/meta/<key> (JSON), and writes go to
 * <root>/tmp first and are renamed into place, so a reader never sees a half-written object and
 * temp files never show up in listings.
 */
export class LocalStorage implements ObjectStorage {
  readonly driver = 'local' as const;
  readonly rootDir: string;
  private readonly objectsDir: string;
  private readonly metaDir: string;
  private readonly tmpDir: string;
  private readonly secret: string;

  constructor(private readonly opts: LocalStorageOptions) {
    if (opts.signingSecret.length < 16) {
      throw new AppError('validation_failed', 'Local storage signing secret must be at least 16 characters');
    }
    this.secret = opts.signingSecret;
    this.rootDir = opts.rootDir;
    this.objectsDir = join(opts.rootDir, 'objects');
    this.metaDir = join(opts.rootDir, 'meta');
    this.tmpDir = join(opts.rootDir, 'tmp');
  }

  async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<void> {
    validateKey(key);
    if (body instanceof Readable) return this.upload(key, body, opts);
    const tmp = await this.tmpPath();
    try {
      await writeFile(tmp, body);
      await this.commit(tmp, key, opts.contentType);
    } catch (err) {
      await rm(tmp, { force: true });
      throw this.writeError(err, 'put', key);
    }
  }

  async upload(key: string, body: UploadBody, opts: UploadOptions = {}): Promise<void> {
    validateKey(key);
    const partSize = opts.partSizeBytes ?? DEFAULT_PART_SIZE;
    if (!Number.isInteger(partSize) || partSize < 1) {
      throw new AppError('validation_failed', 'partSizeBytes must be a positive integer', { field: 'partSizeBytes' });
    }
    const totalBytes = Buffer.isBuffer(body) ? body.length : undefined;
    const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
    const onProgress = opts.onProgress;
    let loaded = 0;
    let reportedPart = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        loaded += chunk.length;
        const part = Math.floor(loaded / partSize);
        if (onProgress && part > reportedPart) {
          reportedPart = part;
          onProgress({ loadedBytes: loaded, totalBytes, part });
        }
        done(null, chunk);
      },
    });
    // The caller's own stream failing is their error, not a storage outage: rethrow it unchanged.
    let sourceError: unknown;
    source.once('error', (err) => (sourceError = err));
    const tmp = await this.tmpPath();
    const out = createWriteStream(tmp);
    try {
      await pipeline(source, counter, out);
      if (onProgress && loaded % partSize !== 0) onProgress({ loadedBytes: loaded, totalBytes, part: reportedPart + 1 });
      await this.commit(tmp, key, opts.contentType);
    } catch (err) {
      // The file opens asynchronously: a source that fails early can beat the open, so wait for
      // the write stream to close before removing, or the file appears after the rm.
      if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
      await rm(tmp, { force: true });
      if (sourceError !== undefined && err === sourceError) throw err;
      throw this.writeError(err, 'upload', key);
    }
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await readFile(this.objectPath(validateKey(key)));
    } catch (err) {
      throw this.readError(err, 'get', key);
    }
  }

  async getStream(key: string): Promise<Readable> {
    const path = this.objectPath(validateKey(key));
    try {
      // Opening first makes a missing key fail here, not later as a stream 'error' event.
      const handle = await open(path, 'r');
      if (!(await handle.stat()).isFile()) {
        await handle.close();
        throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
      }
      return handle.createReadStream();
    } catch (err) {
      throw this.readError(err, 'getStream', key);
    }
  }

  async head(key: string): Promise<ObjectHead | null> {
    try {
      const info = await stat(this.objectPath(validateKey(key)));
      if (!info.isFile()) return null;
      return { size: info.size, contentType: await this.readContentType(key), lastModified: info.mtime };
    } catch (err) {
      if (NOT_FOUND_CODES.has(errnoOf(err) ?? '')) return null;
      throw this.readError(err, 'head', key);
    }
  }

  async list(prefix: string): Promise<ObjectEntry[]> {
    validatePrefix(prefix);
    const out: ObjectEntry[] = [];
    // Start at the prefix's directory; deeper directories are entered only if keys under them can match.
    const slash = prefix.lastIndexOf('/');
    const walk = async (relDir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(join(this.objectsDir, ...(relDir ? relDir.split('/') : [])), { withFileTypes: true });
      } catch (err) {
        if (NOT_FOUND_CODES.has(errnoOf(err) ?? '')) return;
        throw err;
      }
      for (const entry of entries) {
        const rel = relDir ? `${relDir}/${entry.name}` : entry.name;
        if (entry.isDirectory()) {
          if (`${rel}/`.startsWith(prefix) || prefix.startsWith(`${rel}/`)) await walk(rel);
        } else if (entry.isFile() && rel.startsWith(prefix)) {
          const info = await stat(join(this.objectsDir, ...rel.split('/'))).catch(() => null);
          if (info) out.push({ key: rel, size: info.size, lastModified: info.mtime });
        }
      }
    };
    try {
      await walk(slash >= 0 ? prefix.slice(0, slash) : '');
    } catch (err) {
      throw this.unavailable(err, 'list', prefix);
    }
    // S3 lists in UTF-8 byte order; keep the drivers interchangeable.
    return out.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    try {
      for (const [path, root] of [[this.objectPath(key), this.objectsDir], [this.metaPath(key), this.metaDir]] as const) {
        try {
          await unlink(path);
        } catch (err) {
          // Missing, or the key names a directory of other keys: there is no such object.
          if (NOT_FOUND_CODES.has(errnoOf(err) ?? '') || errnoOf(err) === 'EPERM') continue;
          throw err;
        }
        await this.pruneEmptyDirs(dirname(path), root);
      }
    } catch (err) {
      throw this.unavailable(err, 'delete', key);
    }
  }

  async signedGetUrl(key: string, opts: SignedGetOptions = {}): Promise<string> {
    return this.signedUrl('GET', key, opts.expiresInSeconds);
  }

  /** The content type is not part of the signature: the route stores whatever Content-Type the PUT sends. */
  async signedPutUrl(key: string, opts: SignedPutOptions = {}): Promise<string> {
    return this.signedUrl('PUT', key, opts.expiresInSeconds);
  }

  /** verifyLocalSignature with this storage's secret, for the route that serves signed URLs. */
  verifyLocalSignature(method: string, key: string, expires: string | number, signature: string, now: Date = new Date()): boolean {
    return verifyLocalSignature(this.secret, method, key, expires, signature, now);
  }

  async check(): Promise<StorageCheck> {
    try {
      const probe = await this.tmpPath();
      await writeFile(probe, 'ok');
      await rm(probe, { force: true });
      await mkdir(this.objectsDir, { recursive: true });
      return { ok: true, detail: `local directory ${this.rootDir} is writable` };
    } catch (err) {
      const cause = err instanceof AppError && err.cause instanceof Error ? err.cause : (err as Error);
      return { ok: false, detail: `local directory ${this.rootDir} is not writable: ${cause.message}` };
    }
  }

  close(): void {
    // Nothing is held open between calls.
  }

  private signedUrl(method: SignedMethod, key: string, expiresInSeconds: number | undefined): string {
    const path = encodeLocalStoragePath(key);
    const ttl = validateTtl(expiresInSeconds, this.opts.signedUrlTtlSeconds);
    const expires = Math.floor(Date.now() / 1000) + ttl;
    const base = this.opts.publicBaseUrl().replace(/\/+$/, '');
    return `${base}${path}?expires=${expires}&signature=${signLocal(this.secret, method, key, expires)}`;
  }

  // Keys are validated before they get here, so joining their segments cannot leave the directory.
  private objectPath(key: string): string {
    return join(this.objectsDir, ...key.split('/'));
  }

  private metaPath(key: string): string {
    return join(this.metaDir, ...key.split('/'));
  }

  private async tmpPath(): Promise<string> {
    try {
      await mkdir(this.tmpDir, { recursive: true });
    } catch (err) {
      throw this.unavailable(err, 'mkdir', 'tmp');
    }
    return join(this.tmpDir, randomUUID());
  }

  private async readContentType(key: string): Promise<string> {
    try {
      const meta = JSON.parse(await readFile(this.metaPath(key), 'utf8')) as { contentType?: unknown };
      return typeof meta.contentType === 'string' ? meta.contentType : DEFAULT_CONTENT_TYPE;
    } catch {
      return DEFAULT_CONTENT_TYPE; // a file placed by hand, without metadata
    }
  }

  /** Moves a finished temp file into place, then its metadata. */
  private async commit(tmp: string, key: string, contentType: string | undefined): Promise<void> {
    await this.renameInto(tmp, this.objectPath(key));
    const metaTmp = await this.tmpPath();
    try {
      await writeFile(metaTmp, JSON.stringify({ contentType: contentType ?? DEFAULT_CONTENT_TYPE }));
      await this.renameInto(metaTmp, this.metaPath(key));
    } catch (err) {
      await rm(metaTmp, { force: true });
      throw err;
    }
  }

  private async renameInto(from: string, to: string): Promise<void> {
    // A concurrent delete may prune the parent directory between mkdir and rename: retry a few times.
    for (let attempt = 1; ; attempt++) {
      await mkdir(dirname(to), { recursive: true });
      try {
        await rename(from, to);
        return;
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT' || attempt >= 3) throw err;
      }
    }
  }

  private async pruneEmptyDirs(dir: string, stopAt: string): Promise<void> {
    for (let current = dir; current.startsWith(stopAt) && current !== stopAt; current = dirname(current)) {
      try {
        await rmdir(current);
      } catch {
        return; // not empty (or already gone): stop climbing
      }
    }
  }

  private readError(err: unknown, op: string, key: string): AppError {
    if (err instanceof AppError) return err;
    if (NOT_FOUND_CODES.has(errnoOf(err) ?? '')) return new AppError('not_found', 'Object not found', { key });
    return this.unavailable(err, op, key);
  }

  private writeError(err: unknown, op: string, key: string): AppError {
    if (err instanceof AppError) return err;
    if (CONFLICT_CODES.has(errnoOf(err) ?? '')) {
      // A file cannot be both an object and the directory of other keys ('a' and 'a/b').
      return new AppError('invalid_state', 'Storage key conflicts with an existing key', { key });
    }
    return this.unavailable(err, op, key);
  }

  private unavailable(err: unknown, op: string, key: string): AppError {
    if (err instanceof AppError) return err;
    this.opts.logger.warn({ err, op, key, dir: this.rootDir }, 'local storage operation failed');
    const wrapped = new AppError('service_unavailable', 'Object storage is unavailable', { op });
    wrapped.cause = err;
    return wrapped;
  }
}
