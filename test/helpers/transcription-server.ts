/**
 * A local HTTP server speaking the OpenAI audio transcription API (POST /v1/audio/transcriptions,
 * multipart/form-data with `file` and `model`, bearer key; answers {"text": ...}): the one test double
 * allowed for a paid outside service. It records every request it parsed.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TranscriptionRequest {
  path: string;
  authorization: string | undefined;
  contentType: string;
  model: string | null;
  responseFormat: string | null;
  fileName: string | null;
  fileType: string | null;
  file: Buffer | null;
}

export class TranscriptionServer {
  readonly requests: TranscriptionRequest[] = [];
  /** What to answer: status and JSON body. */
  respond: (request: TranscriptionRequest) => { status: number; body: unknown } = () => ({ status: 200, body: { text: 'hello' } });

  private constructor(private readonly server: Server) {}

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1/audio/transcriptions`;
  }

  static async start(): Promise<TranscriptionServer> {
    const server = createServer();
    const engine = new TranscriptionServer(server);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void (async () => {
          const contentType = req.headers['content-type'] ?? '';
          // undici parses multipart/form-data exactly as a client framework would.
          const form = await new Response(Buffer.concat(chunks), { headers: { 'content-type': contentType } }).formData().catch(() => null);
          const file = form?.get('file');
          const blob = file && typeof file !== 'string' ? (file as File) : null;
          const request: TranscriptionRequest = {
            path: req.url ?? '',
            authorization: req.headers.authorization,
            contentType,
            model: (form?.get('model') as string | null) ?? null,
            responseFormat: (form?.get('response_format') as string | null) ?? null,
            fileName: blob?.name ?? null,
            fileType: blob?.type ?? null,
            file: blob ? Buffer.from(await blob.arrayBuffer()) : null,
          };
          engine.requests.push(request);
          const answer = req.method === 'POST' && req.url === '/v1/audio/transcriptions' ? engine.respond(request) : { status: 404, body: { error: { message: 'not found' } } };
          res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
        })();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return engine;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
