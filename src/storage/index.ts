import type { StorageConfig } from '../config/schema.ts';
import { AppError } from '../shared/errors.ts';
import { silentLogger, type Logger } from '../shared/logger.ts';
import { LocalStorage } from './local.ts';
import { S3Storage } from './s3.ts';
import type { ObjectStorage } from './types.ts';

export type * from './types.ts';
export { MAX_KEY_BYTES, MAX_SIGNED_URL_TTL_SECONDS, validateKey, validatePrefix } from './keys.ts';
export {
  LOCAL_STORAGE_PATH_PREFIX,
  LocalStorage,
  decodeLocalStoragePath,
  encodeLocalStoragePath,
  signLocal,
  verifyLocalSignature,
} from './local.ts';
export { MIN_PART_SIZE, S3Storage } from './s3.ts';

export interface StorageDeps {
  /** HMAC key of the local driver's signed URLs (unused by s3, which signs with its credentials). */
  signingSecret: string;
  /** This process's public origin, e.g. http://host:8080; read when a local URL is signed. */
  publicBaseUrl: () => string;
  logger?: Logger;
}

export function createStorage(config: StorageConfig, deps: StorageDeps): ObjectStorage {
  const logger = (deps.logger ?? silentLogger()).child({ component: 'storage', driver: config.driver });
  if (config.driver === 's3') {
    return new S3Storage(config.s3, { signedUrlTtlSeconds: config.signed_url_ttl_seconds, logger });
  }
  if (!config.local_dir) {
    // The config loader resolves null to <data_dir>/storage; reaching here means it was bypassed.
    throw new AppError('validation_failed', 'storage.local_dir must be set for the local driver');
  }
  return new LocalStorage({
    rootDir: config.local_dir,
    signingSecret: deps.signingSecret,
    publicBaseUrl: deps.publicBaseUrl,
    signedUrlTtlSeconds: config.signed_url_ttl_seconds,
    logger,
  });
}

/** Narrows to the local driver, whose signed URLs the HTTP layer must serve itself. */
export function isLocalStorage(storage: ObjectStorage): storage is LocalStorage {
  return storage.driver === 'local' && storage instanceof LocalStorage;
}
