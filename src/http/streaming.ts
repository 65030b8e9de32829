import type { Readable } from 'node:stream';
import { PassThrough } from 'node:stream';
import type { Uws } from './uws.ts';

/**
 * Streams a Readable into a uWS response of known size, honouring backpressure:
 * when uWS cannot take a chunk, the stream pauses until onWritable says the socket drained.
 */
export function pipeToResponse(
  stream: Readable,
  res: Uws.HttpResponse,
  state: { aborted: boolean },
  head: { status: string; headers: Record<string, string>; size: number },
  onDone: (error?: Error) => void,
): void {
  let headWritten = false;
  let pending: { chunk: ArrayBuffer; offset: number } | null = null;
  const writeHead = (): void => {
    if (headWritten) return;
    headWritten = true;
    res.writeStatus(head.status);
    for (const [key, value] of Object.entries(head.headers)) res.writeHeader(key, value);
  };
  const finishOnce = (() => {
    let finished = false;
    return (error?: Error) => {
      if (finished) return;
      finished = true;
      onDone(error);
    };
  })();

  if (head.size === 0) {
    res.cork(() => {
      writeHead();
      res.end();
    });
    stream.destroy();
    finishOnce();
    return;
  }

  const tryWrite = (chunk: ArrayBuffer): boolean => {
    let ok = false;
    let done = false;
    res.cork(() => {
      writeHead();
      [ok, done] = res.tryEnd(chunk, head.size);
    });
    if (done) {
      stream.destroy();
      finishOnce();
    }
    return ok;
  };

  stream.on('data', (data: Buffer) => {
    if (state.aborted) {
      stream.destroy();
      finishOnce(new Error('client went away'));
      return;
    }
    const chunk = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
    const offset = res.getWriteOffset();
    if (!tryWrite(chunk)) {
      stream.pause();
      pending = { chunk, offset };
      res.onWritable((writeOffset) => {
        if (!pending) return true;
        const rest = pending.chunk.slice(writeOffset - pending.offset);
        let ok = false;
        let done = false;
        [ok, done] = res.tryEnd(rest, head.size);
        if (done) {
          stream.destroy();
          finishOnce();
        } else if (ok) {
          pending = null;
          stream.resume();
        }
        return ok;
      });
    }
  });
  stream.on('error', (error: Error) => {
    if (!state.aborted) {
      state.aborted = true;
      res.close(); // headers may already be out: the only honest signal left is a cut connection
    }
    finishOnce(error);
  });
  stream.on('end', () => finishOnce());
}

/** A Readable fed by a uWS request body, pausing the socket while the consumer is behind. */
export function requestBodyStream(res: Uws.HttpResponse, limitBytes: number, onTooLarge: () => void): PassThrough {
  const body = new PassThrough();
  let received = 0;
  let paused = false;
  body.on('drain', () => {
    if (paused) {
      paused = false;
      res.resume();
    }
  });
  res.onData((chunk, isLast) => {
    received += chunk.byteLength;
    if (received > limitBytes) {
      body.destroy(new Error('body too large'));
      onTooLarge();
      return;
    }
    if (!body.write(Buffer.from(chunk.slice(0))) && !isLast) {
      paused = true;
      res.pause();
    }
    if (isLast) body.end();
  });
  return body;
}
