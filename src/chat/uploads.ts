/**
 * Chat files (docs/api.md, "Chat", Files): an upload is declared (name, size, type) and answered
 * with the storage driver's signed PUT URL and a `file_url` on this server. A file message may use a
 * `file_url` only when its sender declared it and the object in storage has the declared size and
 * type. The `file_url` resolves, for the uploader and the participants of a conversation it was sent
 * in, to a short-lived signed GET URL; for anyone else it is 403.
 */
import type { Database } from '../db/database.ts';
import type { ChatUploadRow } from '../db/schema.ts';
import type { Upload } from '../protocol/chat.ts';
import type { Clock } from '../shared/clock.ts';
import { AppError } from '../shared/errors.ts';
import type { ObjectStorage } from '../storage/types.ts';

/** Where file_url points: GET <base>/v1/chat/files/<upload id>. */
export const CHAT_FILES_PATH = '/v1/chat/files/';
const FILE_URL_ID = /\/v1\/chat\/files\/([0-9A-HJKMNP-TV-Z]{26})$/;
/** Lifetime of the signed GET URL a file_url redirects to. */
const DOWNLOAD_URL_TTL_SECONDS = 300;

export interface UploadLimits {
  maxFileBytes: number;
  allowedFileTypes: readonly string[];
  urlTtlSeconds: number;
}

export interface DeclaredFile {
  file_url: string;
  file_name?: string;
  file_size?: number;
  file_type?: string;
}

export interface UploadRequest {
  file_name: string;
  file_size: number;
  file_type: string;
}

/** "image/png; charset=…" → "image/png". */
export function mediaType(value: string): string {
  return value.split(';')[0]!.trim().toLowerCase();
}

export function typeAllowed(type: string, allowed: readonly string[]): boolean {
  const wanted = mediaType(type);
  return allowed.some((entry) => (entry.endsWith('/*') ? wanted.startsWith(entry.slice(0, -1)) : wanted === entry));
}

export class UploadService {
  constructor(
    private readonly deps: { db: Database; clock: Clock; storage: ObjectStorage; limits: UploadLimits; newId: () => string },
  ) {}

  /** Declares an upload: its limits are checked now, its bytes when a message uses it. */
  async create(ownerId: string, request: UploadRequest, baseUrl: string): Promise<Upload> {
    const { limits, storage, clock, db } = this.deps;
    if (request.file_size > limits.maxFileBytes) {
      throw new AppError('payload_too_large', `Files are limited to ${limits.maxFileBytes} bytes`, { limit_bytes: limits.maxFileBytes, file_size: request.file_size });
    }
    if (!typeAllowed(request.file_type, limits.allowedFileTypes)) {
      throw new AppError('validation_failed', `File type ${request.file_type} is not allowed`, { field: 'file_type', allowed: limits.allowedFileTypes });
    }
    const id = this.deps.newId();
    const key = `chat/files/${id}`;
    const fileType = mediaType(request.file_type);
    const uploadUrl = await storage.signedPutUrl(key, { expiresInSeconds: limits.urlTtlSeconds, contentType: fileType });
    const expiresAt = new Date(clock.nowMs() + limits.urlTtlSeconds * 1000);
    const fileUrl = `${baseUrl}${CHAT_FILES_PATH}${id}`;
    await db
      .insertInto('chat_uploads')
      .values({ id, owner_id: ownerId, storage_key: key, file_url: fileUrl, file_name: request.file_name, file_size: request.file_size, file_type: fileType, expires_at: expiresAt })
      .execute();
    return { upload_url: uploadUrl, method: 'PUT', headers: { 'Content-Type': fileType }, file_url: fileUrl, expires_at: expiresAt.toISOString() };
  }

  /**
   * The upload a file message may carry: issued by this server to the sender, matching what the
   * message declares, and present in storage with the declared size and type. Else 400.
   */
  async verifiedForSend(senderId: string, declared: DeclaredFile): Promise<ChatUploadRow> {
    const refuse = (message: string): AppError => new AppError('validation_failed', message, { field: 'file_url' });
    const id = FILE_URL_ID.exec(declared.file_url.split(/[?#]/)[0]!)?.[1];
    const upload = id === undefined ? undefined : await this.deps.db.selectFrom('chat_uploads').selectAll().where('id', '=', id).executeTakeFirst();
    if (!upload || upload.owner_id !== senderId) throw refuse('file_url is not an upload of yours (POST /v1/chat/uploads)');
    if (declared.file_name !== undefined && declared.file_name !== upload.file_name) throw refuse(`file_name differs from the upload's (${upload.file_name})`);
    if (declared.file_size !== undefined && declared.file_size !== Number(upload.file_size)) throw refuse(`file_size differs from the upload's (${upload.file_size})`);
    if (declared.file_type !== undefined && mediaType(declared.file_type) !== upload.file_type) throw refuse(`file_type differs from the upload's (${upload.file_type})`);
    // Checked on every send: a signed PUT URL can be used again until it expires.
    const head = await this.deps.storage.head(upload.storage_key);
    if (!head) throw refuse('The file was never uploaded (PUT it to upload_url first)');
    if (head.size !== Number(upload.file_size)) throw refuse(`The uploaded file has ${head.size} bytes, not the declared ${upload.file_size}`);
    const storedType = head.contentType === undefined ? '' : mediaType(head.contentType);
    if (storedType !== upload.file_type) throw refuse(`The uploaded file is ${storedType || 'untyped'}, not the declared ${upload.file_type}`);
    if (!upload.verified_at) await this.deps.db.updateTable('chat_uploads').set({ verified_at: this.deps.clock.now() }).where('id', '=', upload.id).execute();
    return upload;
  }

  /** A signed GET URL of the file, for its uploader and the participants of a conversation it was sent in. */
  async downloadUrl(userId: string, uploadId: string): Promise<string> {
    const { db, storage } = this.deps;
    const upload = await db.selectFrom('chat_uploads').select(['id', 'owner_id', 'storage_key']).where('id', '=', uploadId).executeTakeFirst();
    if (!upload) throw new AppError('not_found', `File ${uploadId} not found`);
    if (upload.owner_id !== userId) {
      const shared = await db
        .selectFrom('chat_messages as m')
        .innerJoin('chat_conversations as c', 'c.id', 'm.conversation_id')
        .select('m.id')
        .where('m.upload_id', '=', uploadId)
        .where((eb) => eb.or([eb('c.user_a', '=', userId), eb('c.user_b', '=', userId)]))
        .limit(1)
        .executeTakeFirst();
      if (!shared) throw new AppError('forbidden', 'Only the participants of the conversation can open this file');
    }
    return storage.signedGetUrl(upload.storage_key, { expiresInSeconds: DOWNLOAD_URL_TTL_SECONDS });
  }
}
