import { randomUUID } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { AppError } from '../../shared/errors.ts';
import { errorResult, type HttpServer } from '../server.ts';
import type { Uws } from '../uws.ts';

export interface WebRoutesOptions {
  /** The demo client's bundle (scripts/build-web.mjs writes src/web/dist/). */
  distDir: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.wasm': 'application/wasm',
};

const ASSET_PREFIX = '/assets/';
const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * The relative path inside distDir that `/assets/<path>` names, or null when it names nothing
 * servable: bad percent-encoding, empty or dot segments (no traversal, no hidden files such as the
 * build stamp), backslashes or NUL bytes.
 */
export function assetPathFromUrl(url: string): string | null {
  if (!url.startsWith(ASSET_PREFIX)) return null;
  let decoded: string;
  try {
    decoded = decodeURIComponent(url.slice(ASSET_PREFIX.length));
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const segments = decoded.split('/');
  if (segments.some((segment) => segment === '' || segment.startsWith('.'))) return null;
  return segments.join('/');
}

/**
 * The demo client: `GET /` is its index.html, `GET /assets/<file>` a file of its bundle (HEAD too).
 * Versioned asset URLs (`?v=<hash>`, as index.html writes them) are cached for a year; index.html
 * and unversioned URLs are revalidated (ETag). A missing bundle answers 503 with how to build it.
 */
export function webRoutes(http: HttpServer, options: WebRoutesOptions): void {
  const root = resolve(options.distDir);

  const serve =
    (target: 'index' | 'asset', head: boolean) =>
    (res: Uws.HttpResponse, req: Uws.HttpRequest): void => {
      // Everything from req is read now: uWS invalidates it when this function returns.
      const requestId = randomUUID();
      const url = req.getUrl();
      const versioned = new URLSearchParams(req.getQuery() ?? '').has('v');
      const ifNoneMatch = req.getHeader('if-none-match');
      const state = { aborted: false };
      res.onAborted(() => {
        state.aborted = true;
      });
      const fail = (error: AppError): void => http.respond(res, state, requestId, errorResult(error));

      const relative = target === 'index' ? 'index.html' : assetPathFromUrl(url);
      const path = relative === null ? null : join(root, relative);
      if (path === null || !path.startsWith(root + sep)) {
        fail(new AppError('not_found', `No such file: ${url}`));
        return;
      }

      (async () => {
        const info = await stat(path).catch(() => null);
        if (!info?.isFile()) {
          if (target === 'index') {
            fail(new AppError('service_unavailable', 'demo client not built: run npm run setup', { dist_dir: root }));
          } else {
            fail(new AppError('not_found', `No such file: ${url}`));
          }
          return;
        }
        const etag = `W/"${info.size.toString(16)}-${Math.trunc(info.mtimeMs).toString(16)}"`;
        const headers: Record<string, string> = {
          'Content-Type': CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream',
          'Cache-Control': target === 'asset' && versioned ? IMMUTABLE : 'no-cache',
          ETag: etag,
          'X-Content-Type-Options': 'nosniff',
          'X-Request-Id': requestId,
        };
        const notModified = ifNoneMatch !== '' && ifNoneMatch.split(',').some((tag) => tag.trim() === etag || tag.trim() === '*');
        const body = head || notModified ? null : await readFile(path);
        if (state.aborted) return;
        state.aborted = true; // written once
        res.cork(() => {
          if (notModified) {
            res.writeStatus('304 Not Modified');
            for (const key of ['Cache-Control', 'ETag', 'X-Request-Id']) res.writeHeader(key, headers[key]!);
            res.endWithoutBody();
            return;
          }
          res.writeStatus('200 OK');
          for (const [key, value] of Object.entries(headers)) res.writeHeader(key, value);
          if (body) res.end(body);
          else res.endWithoutBody(info.size);
        });
      })().catch(() => {
        fail(new AppError('internal_error', 'Internal server error'));
      });
    };

  http.addRaw('get', '/', serve('index', false));
  http.addRaw('head', '/', serve('index', true));
  http.addRaw('get', '/assets/*', serve('asset', false));
  http.addRaw('head', '/assets/*', serve('asset', true));
}
