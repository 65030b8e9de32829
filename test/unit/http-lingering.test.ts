import t from 'tap';
import { answerAndLinger, lingerCapBytes, LINGER_MIN_BYTES } from '../../src/http/lingering.ts';
import type { Uws } from '../../src/http/uws.ts';

/** The part of a uWS response answerAndLinger uses, recording what it was asked to do. */
function fakeResponse() {
  const fake = {
    wire: '',
    closes: 0,
    closed: null as Promise<void> | null,
    res: null as unknown as Uws.HttpResponse,
  };
  let onClose: () => void = () => undefined;
  fake.closed = new Promise<void>((resolve) => {
    onClose = resolve;
  });
  fake.res = {
    cork(cb: () => void) {
      cb();
      return this;
    },
    // uWS writes "HTTP/1.1 " + status + "\r\n" for writeStatus.
    writeStatus(status: string) {
      fake.wire += `HTTP/1.1 ${status}\r\n`;
      return this;
    },
    close() {
      fake.closes += 1;
      onClose();
      return this;
    },
  } as unknown as Uws.HttpResponse;
  return fake;
}

const answer = { status: '413 Payload Too Large', headers: { 'X-Request-Id': 'req-1', 'Content-Type': 'application/json; charset=utf-8' }, body: '{"error":{"code":"payload_too_large","message":"é"}}' };

t.test('the answer is a complete HTTP response: Connection: close, Content-Length framing the body', async (t) => {
  const fake = fakeResponse();
  answerAndLinger(fake.res, answer, { maxBytes: 1024, maxMs: 60_000 }).gone();
  const [head, body] = fake.wire.split('\r\n\r\n');
  t.match(head, /^HTTP\/1\.1 413 Payload Too Large\r\n/);
  t.match(head, /\r\nConnection: close(\r\n|$)/);
  t.match(head, /\r\nX-Request-Id: req-1(\r\n|$)/);
  t.equal(Number(/\r\nContent-Length: (\d+)/.exec(head ?? '')?.[1]), Buffer.byteLength(body ?? ''), 'Content-Length counts bytes, the trailing CRLF included');
  t.same(JSON.parse(body ?? ''), JSON.parse(answer.body));
  t.equal(fake.closes, 0, 'the connection stays open to drain');
});

t.test('a header with a line break is dropped, not written', async (t) => {
  const fake = fakeResponse();
  answerAndLinger(fake.res, { ...answer, headers: { 'X-Evil': 'a\r\nSet-Cookie: x=1', 'X-Ok': 'yes' } }, { maxBytes: 1024, maxMs: 60_000 }).gone();
  t.notMatch(fake.wire, /Set-Cookie|X-Evil/);
  t.match(fake.wire, /\r\nX-Ok: yes\r\n/);
});

t.test('the rest of the body is read and discarded; the close comes after its last chunk', async (t) => {
  const fake = fakeResponse();
  const lingering = answerAndLinger(fake.res, answer, { maxBytes: 1024, maxMs: 60_000 });
  lingering.data(new ArrayBuffer(500), false);
  lingering.data(new ArrayBuffer(500), false);
  t.equal(fake.closes, 0, 'still draining');
  lingering.data(new ArrayBuffer(10), true);
  t.equal(fake.closes, 1, 'closed once the body is all read');
  lingering.data(new ArrayBuffer(10), true);
  lingering.gone();
  t.equal(fake.closes, 1, 'closed once');
});

t.test('a body beyond the cap gets the connection closed under it', async (t) => {
  const fake = fakeResponse();
  const lingering = answerAndLinger(fake.res, answer, { maxBytes: 1024, maxMs: 60_000 });
  lingering.data(new ArrayBuffer(1024), false);
  t.equal(fake.closes, 0, 'at the cap: still draining');
  lingering.data(new ArrayBuffer(1), false);
  t.equal(fake.closes, 1, 'past the cap: closed');
});

t.test('a body still coming at the deadline gets the connection closed', async (t) => {
  const fake = fakeResponse();
  const lingering = answerAndLinger(fake.res, answer, { maxBytes: 1024, maxMs: 1 });
  lingering.data(new ArrayBuffer(10), false);
  // The deadline timer is unref'd (it never holds a stopping server up): keep the loop alive meanwhile.
  const keepAlive = setInterval(() => undefined, 60_000);
  await fake.closed;
  clearInterval(keepAlive);
  t.equal(fake.closes, 1);
});

t.test('a connection the client closed is not closed again', async (t) => {
  const fake = fakeResponse();
  const lingering = answerAndLinger(fake.res, answer, { maxBytes: 1024, maxMs: 60_000 });
  lingering.gone();
  lingering.data(new ArrayBuffer(2048), true);
  t.equal(fake.closes, 0);
});

t.test('the cap is a multiple of the body limit, never under the fixed floor', async (t) => {
  t.equal(lingerCapBytes(1024 * 1024), LINGER_MIN_BYTES);
  t.equal(lingerCapBytes(64 * 1024 * 1024), 4 * 64 * 1024 * 1024);
});
