import type { Readable } from 'node:stream';

export type StorageDriver = 'local' | 's3';

export type PutBody = Buffer | Uint8Array | string | Readable;
export type UploadBody = Readable | Buffer;

export interface PutOptions {
  /** Stored with the object; defaults to application/octet-stream on both drivers. */
  contentType?: string;
}

export interface UploadProgress {
  /** Bytes sent (S3) or written (local) so far. */
  loadedBytes: number;
  /** Known only when the body is a Buffer. */
  totalBytes?: number;
  /** 1-based number of the part this event reports. */
  part?: number;
}

export interface UploadOptions extends PutOptions {
  /** S3 multipart part size; S3 refuses parts under 5 MiB. Default 8 MiB. */
  partSizeBytes?: number;
  /** Called per completed part (S3) or per partSizeBytes written (local), and at the end. */
  onProgress?: (progress: UploadProgress) => void;
}

export interface ObjectHead {
  size: number;
  contentType?: string;
  lastModified: Date;
}

export interface ObjectEntry {
  key: string;
  size: number;
  lastModified: Date;
}

export interface ListOptions {
  /** Keys per request to the backend (S3 MaxKeys, 1..1000); the result is always the whole listing. */
  pageSize?: number;
}

export interface SignedGetOptions {
  /** Default: storage.signed_url_ttl_seconds. Max 7 days (the S3 limit). */
  expiresInSeconds?: number;
}

export interface SignedPutOptions extends SignedGetOptions {
  /** S3: signed, so the uploader must send this exact Content-Type. Local: not bound by the signature. */
  contentType?: string;
}

export interface StorageCheck {
  ok: boolean;
  detail: string;
}

/**
 * One interface over the `local` and `s3` drivers.
 * Errors: missing objects → AppError('not_found'); bad keys or options → AppError('validation_failed');
 * backend failures → AppError('service_unavailable') with the original error as `cause`.
 */
export interface ObjectStorage {
  readonly driver: StorageDriver;
  put(key: string, body: PutBody, opts?: PutOptions): Promise<void>;
  /** For big bodies: S3 multipart upload; local streams to a temp file and renames it into place. */
  upload(key: string, body: UploadBody, opts?: UploadOptions): Promise<void>;
  get(key: string): Promise<Buffer>;
  getStream(key: string): Promise<Readable>;
  /** null when the object does not exist. */
  head(key: string): Promise<ObjectHead | null>;
  /** Every object whose key starts with prefix, in UTF-8 byte order of keys. */
  list(prefix: string, opts?: ListOptions): Promise<ObjectEntry[]>;
  /** Idempotent, as on S3: deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  signedGetUrl(key: string, opts?: SignedGetOptions): Promise<string>;
  signedPutUrl(key: string, opts?: SignedPutOptions): Promise<string>;
  /** For /readyz and `callplane doctor`: S3 HeadBucket; local: the directory is writable. Never throws. */
  check(): Promise<StorageCheck>;
  close(): void;
}
