import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { StorageConfig } from '../config/schema.ts';
import { AppError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { DEFAULT_CONTENT_TYPE, validateKey, validatePageSize, validatePrefix, validateTtl } from './keys.ts';
import type {
  ListOptions,
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

export type S3Config = StorageConfig['s3'];

export interface S3StorageOptions {
  signedUrlTtlSeconds: number;
  logger: Logger;
  /** How long check() waits for HeadBucket, so /readyz answers even when the endpoint hangs. */
  checkTimeoutMs?: number;
}

/** S3 refuses multipart parts under 5 MiB (except the last one). */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
const UPLOAD_QUEUE_SIZE = 4;

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | null;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || (e?.name !== 'NoSuchBucket' && e?.$metadata?.httpStatusCode === 404);
}

export function buildS3ClientConfig(config: S3Config): S3ClientConfig {
  if ((config.access_key_id === null) !== (config.secret_access_key === null)) {
    throw new AppError('validation_failed', 'storage.s3: set both access_key_id and secret_access_key, or neither');
  }
  return {
    region: config.region,
    forcePathStyle: config.force_path_style,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    // null keys: the SDK's default chain (env, profile, instance role).
    ...(config.access_key_id && config.secret_access_key
      ? { credentials: { accessKeyId: config.access_key_id, secretAccessKey: config.secret_access_key } }
      : {}),
    // Newer SDKs add CRC32 checksums by default, which most S3-compatible servers (s3rver, older MinIO/Ceph) reject.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

export class S3Storage implements ObjectStorage {
  readonly driver = 's3' as const;
  readonly bucket: string;
  readonly client: S3Client;

  constructor(
    config: S3Config,
    private readonly opts: S3StorageOptions,
  ) {
    this.bucket = config.bucket;
    this.client = new S3Client(buildS3ClientConfig(config));
  }

  async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<void> {
    validateKey(key);
    // PutObject needs a Content-Length, which a stream does not have: lib-storage buffers it into parts.
    if (body instanceof Readable) return this.upload(key, body, opts);
    await this.call('put', key, () =>
      this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: opts.contentType ?? DEFAULT_CONTENT_TYPE }),
      ),
    );
  }

  async upload(key: string, body: UploadBody, opts: UploadOptions = {}): Promise<void> {
    validateKey(key);
    const partSize = opts.partSizeBytes ?? DEFAULT_PART_SIZE;
    if (!Number.isInteger(partSize) || partSize < MIN_PART_SIZE) {
      throw new AppError('validation_failed', `partSizeBytes must be an integer of at least ${MIN_PART_SIZE}`, {
        field: 'partSizeBytes',
      });
    }
    // The caller's own stream failing is their error, not a storage outage: rethrow it unchanged.
    let sourceError: unknown;
    if (body instanceof Readable) body.once('error', (err) => (sourceError = err));
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentType: opts.contentType ?? DEFAULT_CONTENT_TYPE },
      partSize,
      queueSize: UPLOAD_QUEUE_SIZE,
      leavePartsOnError: false, // abort the multipart upload so no orphaned parts are billed
    });
    const onProgress = opts.onProgress;
    if (onProgress) {
      upload.on('httpUploadProgress', (p) => onProgress({ loadedBytes: p.loaded ?? 0, totalBytes: p.total, part: p.part }));
    }
    try {
      await upload.done();
    } catch (err) {
      if (sourceError !== undefined && err === sourceError) throw err;
      throw this.unavailable(err, 'upload', key);
    }
  }

  async get(key: string): Promise<Buffer> {
    validateKey(key);
    const res = await this.call('get', key, () => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })));
    if (!res.Body) return Buffer.alloc(0);
    return Buffer.from(await res.Body.transformToByteArray());
  }

  async getStream(key: string): Promise<Readable> {
    validateKey(key);
    const res = await this.call('getStream', key, () => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })));
    // In Node the body is an IncomingMessage (a Readable) with the SDK's helpers mixed in.
    if (res.Body instanceof Readable) return res.Body;
    return Readable.from([Buffer.from(res.Body ? await res.Body.transformToByteArray() : [])]);
  }

  async head(key: string): Promise<ObjectHead | null> {
    validateKey(key);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return {
        size: res.ContentLength ?? 0,
        ...(res.ContentType ? { contentType: res.ContentType } : {}),
        lastModified: res.LastModified ?? new Date(0),
      };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw this.unavailable(err, 'head', key);
    }
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ObjectEntry[]> {
    validatePrefix(prefix);
    const pageSize = validatePageSize(opts.pageSize);
    const out: ObjectEntry[] = [];
    let token: string | undefined;
    do {
      const page = await this.call('list', prefix, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            ...(prefix ? { Prefix: prefix } : {}),
            MaxKeys: pageSize,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        ),
      );
      for (const item of page.Contents ?? []) {
        if (item.Key === undefined) continue;
        out.push({ key: item.Key, size: item.Size ?? 0, lastModified: item.LastModified ?? new Date(0) });
      }
      if (page.IsTruncated && !page.NextContinuationToken) {
        // Looping on a truncated page without a token would never end; a partial listing would lie.
        throw this.unavailable(new Error('truncated listing without a continuation token'), 'list', prefix);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    await this.call('delete', key, () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
  }

  async signedGetUrl(key: string, opts: SignedGetOptions = {}): Promise<string> {
    validateKey(key);
    const expiresIn = validateTtl(opts.expiresInSeconds, this.opts.signedUrlTtlSeconds);
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), { expiresIn });
  }

  async signedPutUrl(key: string, opts: SignedPutOptions = {}): Promise<string> {
    validateKey(key);
    const expiresIn = validateTtl(opts.expiresInSeconds, this.opts.signedUrlTtlSeconds);
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ...(opts.contentType ? { ContentType: opts.contentType } : {}),
    });
    // A requested Content-Type is signed, so the uploader cannot store the object under another type. Without one
    // it stays unsigned (the presigner's default), else the SDK's own default type would bind the uploader.
    return getSignedUrl(this.client, command, {
      expiresIn,
      ...(opts.contentType ? { signableHeaders: new Set(['content-type']) } : {}),
    });
  }

  async check(): Promise<StorageCheck> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), {
        abortSignal: AbortSignal.timeout(this.opts.checkTimeoutMs ?? 5000),
      });
      return { ok: true, detail: `s3 bucket ${this.bucket} is reachable` };
    } catch (err) {
      const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
      const status = e.$metadata?.httpStatusCode ? ` (HTTP ${e.$metadata.httpStatusCode})` : '';
      return { ok: false, detail: `s3 bucket ${this.bucket} is not reachable: ${e.name ?? 'Error'}${status} ${e.message ?? ''}`.trim() };
    }
  }

  close(): void {
    this.client.destroy();
  }

  /** Runs one SDK call, mapping a missing object to not_found and anything else to service_unavailable. */
  private async call<T>(op: string, key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isNotFound(err)) throw new AppError('not_found', 'Object not found', { key });
      throw this.unavailable(err, op, key);
    }
  }

  private unavailable(err: unknown, op: string, key: string): AppError {
    if (err instanceof AppError) return err;
    this.opts.logger.warn({ err, op, key, bucket: this.bucket }, 's3 storage operation failed');
    const wrapped = new AppError('service_unavailable', 'Object storage is unavailable', { op });
    wrapped.cause = err;
    return wrapped;
  }
}
