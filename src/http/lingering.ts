import type { Uws } from './uws.ts';

/**
 * Bounds on reading a refused body after the answer is out. Clients that read while they send
 * (curl, Node's fetch) close the connection as soon as they have the answer; the bounds are for
 * the rest, which read only once their whole body is sent: a body beyond the cap, or still coming
 * at the deadline, gets the connection closed under it, as nginx's lingering_time does. Draining
 * keeps nothing in memory, so the cap sits well above the largest accepted body. Constants, not
 * settings: they only decide how long a misbehaving client is humoured, and a reverse proxy in
 * front applies its own.
 */
export const LINGER_MIN_BYTES = 64 * 1024 * 1024;
export const LINGER_BODY_FACTOR = 4;
export const LINGER_MS = 30_000;

export function lingerCapBytes(maxBodyBytes: number): number {
  return Math.max(LINGER_MIN_BYTES, LINGER_BODY_FACTOR * maxBodyBytes);
}

export interface LingeringClose {
  /** Takes (and discards) a chunk of the refused body; closes once it is all read or over the cap. */
  data(chunk: ArrayBuffer, isLast: boolean): void;
  /** The connection went away (uWS onAborted): nothing left to close. */
  gone(): void;
}

export interface RawAnswer {
  /** Status line after the protocol, e.g. "413 Payload Too Large". */
  status: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends a complete answer with `Connection: close`, then reads and discards the rest of the
 * request body before closing, so a client still sending is not reset before it reads the answer
 * (nginx's lingering close; README "Decisions"). Answering with uWS's end(…, true) closes the socket at
 * once, with the body unread, which resets the connection under the client: Node's fetch then
 * fails with EPIPE instead of seeing the status.
 *
 * uWS has no call that sends a complete response and keeps the response open: end() and tryEnd()
 * invalidate it, after which the connection can no longer be closed from here. writeStatus() puts
 * its argument on the wire verbatim between "HTTP/1.1 " and "\r\n", so the whole answer goes
 * through it: the trailing "\r\n" becomes the last two bytes of the body (JSON allows the
 * whitespace) and is counted in Content-Length. Nothing here is client input (the request id is
 * checked before it gets here), and a header with a line break is dropped rather than written.
 */
export function answerAndLinger(res: Uws.HttpResponse, answer: RawAnswer, limits: { maxBytes: number; maxMs: number }): LingeringClose {
  const body = `${answer.body}\r\n`;
  const headerLines = Object.entries({ ...answer.headers, 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close' })
    .filter(([key, value]) => !/[\r\n]/.test(key) && !/[\r\n]/.test(value))
    .map(([key, value]) => `${key}: ${value}`);
  // The last "\r\n" of the body is the one uWS appends.
  const wire = [answer.status, ...headerLines, '', answer.body].join('\r\n');
  res.cork(() => {
    res.writeStatus(wire);
  });

  let open = true;
  let drained = 0;
  const close = (): void => {
    if (!open) return;
    open = false;
    clearTimeout(deadline);
    res.close(); // runs the route's onAborted, which calls gone(): already closed by then
  };
  const deadline = setTimeout(close, limits.maxMs);
  deadline.unref(); // never what keeps a stopping process alive
  return {
    data(chunk, isLast) {
      if (!open) return;
      drained += chunk.byteLength;
      // Everything read: the close is a clean FIN behind the answer. Over the cap: close anyway.
      if (isLast || drained > limits.maxBytes) close();
    },
    gone() {
      open = false;
      clearTimeout(deadline);
    },
  };
}
