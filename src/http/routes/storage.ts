import { randomUUID } from 'node:crypto';
import type { Clock } from '../../shared/clock.ts';
import type { Logger } from '../../shared/logger.ts';
import type { ObjectStorage } from '../../storage/types.ts';
import { AppError, toAppError } from '../../shared/errors.ts';
import { decodeLocalStoragePath, verifyLocalSignature } from '../../storage/local.ts';
import { errorResult, type HttpServer } from '../server.ts';
import { pipeToResponse, requestBodyStream } from '../streaming.ts';

/** Largest object a signed local PUT accepts (chat files, spooled recordings go through the API, not here). */
const MAX_SIGNED_PUT_BYTES = 2 * 1024 * 1024 * 1024;

/**
 * Serves the local driver's signed GET and PUT URLs (/v1/storage/<key>?expires=&signature=).
 * S3 signed URLs go to the S3 server itself, so these routes only answer for the local driver.
 */
export function storageRoutes(http: HttpServer, ctx: { storage: ObjectStorage; urlSigningSecret: string; clock: Clock; logger: Logger }): void {
  const handler = (method: 'GET' | 'PUT') => (res: Parameters<Parameters<HttpServer['addRaw']>[2]>[0], req: Parameters<Parameters<HttpServer['addRaw']>[2]>[1]) => {
    const requestId = randomUUID();
    const state = { aborted: false };
    res.onAborted(() => {
      state.aborted = true;
    });
    const rawPath = req.getUrl();
    const query = new URLSearchParams(req.getQuery() ?? '');
    const contentType = req.getHeader('content-type');
    const fail = (error: unknown): void => {
      const appError = toAppError(error);
      if (appError.code === 'internal_error') ctx.logger.error({ err: error, requestId, rawPath }, 'storage route failed');
      http.respond(res, state, requestId, errorResult(appError, method === 'PUT'));
    };

    const key = decodeLocalStoragePath(rawPath);
    const signed =
      key !== null &&
      ctx.storage.driver === 'local' &&
      verifyLocalSignature(ctx.urlSigningSecret, method, key, query.get('expires') ?? '', query.get('signature') ?? '', ctx.clock.now());
    if (!signed || key === null) {
      fail(new AppError('forbidden', 'Missing, expired or invalid storage URL signature'));
      return;
    }

    if (method === 'GET') {
      Promise.all([ctx.storage.head(key), ctx.storage.getStream(key)])
        .then(([head, stream]) => {
          if (!head) throw new AppError('not_found', 'Object not found');
          pipeToResponse(
            stream,
            res,
            state,
            { status: '200 OK', size: head.size, headers: { 'Content-Type': head.contentType ?? 'application/octet-stream', 'X-Request-Id': requestId } },
            (error) => {
              if (error) ctx.logger.warn({ err: error, key }, 'storage download ended early');
            },
          );
        })
        .catch(fail);
      return;
    }

    const body = requestBodyStream(res, MAX_SIGNED_PUT_BYTES, () => fail(new AppError('payload_too_large', 'Object too large')));
    ctx.storage
      .upload(key, body, contentType ? { contentType } : {})
      .then(() => http.respond(res, state, requestId, { status: 200, body: { key } }))
      .catch(fail);
  };
  http.addRaw('get', '/v1/storage/*', handler('GET'));
  http.addRaw('put', '/v1/storage/*', handler('PUT'));
}
