/**
 * Chat files (docs/api.md, "Chat", Files) through the whole server, on both storage drivers: the
 * local directory (signed URLs served by this server) and S3 against the test S3 server. A file goes
 * up through the signed PUT URL, is sent as a file message, reaches the other side's socket, and is
 * downloaded through its file_url by the other participant; a stranger cannot resolve it. Files never
 * uploaded, or uploaded with another size or type than declared, cannot be sent.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- JSON read field by field */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { createAccount, startTestServer, type TestAccount } from '../helpers/server.ts';
import { startS3rver, S3RVER_CREDENTIALS } from '../helpers/s3rver.ts';
import { recorder } from '../helpers/ws.ts';
import { eventually } from '../helpers/wait.ts';

const BUCKET = 'callplane-chat-test';
const s3 = await startS3rver(t, BUCKET);
const chat = { max_file_bytes: 1024 * 1024, allowed_file_types: ['image/*', 'application/pdf', 'text/plain'] };
const drivers: Array<[string, Record<string, unknown>]> = [
  ['local', {}],
  ['s3', { storage: { driver: 's3', s3: { endpoint: s3.endpoint, region: 'us-east-1', bucket: BUCKET, ...S3RVER_CREDENTIALS, force_path_style: true } } }],
];

for (const [driver, settings] of drivers) {
  t.test(`${driver} driver`, async (t) => {
    const server = await startTestServer(t, { ...settings, chat });
    t.equal(server.ctx.storage.driver, driver);
    const host = await createAccount(server, 'host', 'Jane Smith');
    const ann = await createAccount(server, 'user', 'Ann');
    const eve = await createAccount(server, 'user', 'Eve');
    const conversation = (await server.api('/v1/chat/conversations', { method: 'POST', token: host.token, body: { user_id: ann.id } })).body.id;

    const declare = (who: TestAccount, body: Record<string, unknown>) => server.api('/v1/chat/uploads', { method: 'POST', token: who.token, body });
    const put = (upload: any, bytes: Buffer, contentType = upload.headers['Content-Type']) =>
      fetch(upload.upload_url, { method: 'PUT', headers: { ...upload.headers, 'Content-Type': contentType }, body: new Uint8Array(bytes) });
    const sendFile = (who: TestAccount, fields: Record<string, unknown>) =>
      server.api(`/v1/chat/conversations/${conversation}/messages`, { method: 'POST', token: who.token, body: { body: 'Here is the document I mentioned', type: 'file', ...fields } });

    t.test('round trip: declare, PUT, send, the other side hears of it and downloads the same bytes; a stranger cannot', async (t) => {
      const bytes = randomBytes(245_760);
      const declared = await declare(host, { file_name: 'session-notes.pdf', file_size: bytes.length, file_type: 'application/pdf' });
      t.equal(declared.status, 201, JSON.stringify(declared.body));
      const upload = declared.body.upload;
      t.match(upload, { upload_url: String, method: 'PUT', headers: { 'Content-Type': 'application/pdf' }, file_url: new RegExp(`^${server.baseUrl}/v1/chat/files/[0-9A-Z]{26}$`), expires_at: String });
      if (driver === 's3') t.ok(upload.upload_url.startsWith(s3.endpoint), 'the bytes go to S3 itself');
      const annSocket = recorder(`${server.baseUrl.replace('http', 'ws')}/v1/chat/ws?token=${ann.token}`);
      t.teardown(() => annSocket.ws.close());
      await eventually(() => server.chatSockets.socketsOf(ann.id), (n) => n === 1);

      // The uploader may look at its file before sending it; nobody else can.
      t.equal((await fetch(upload.file_url, { headers: { authorization: `Bearer ${ann.token}` }, redirect: 'manual' })).status, 403);
      const stored = await put(upload, bytes);
      t.equal(stored.status, 200, await stored.text());
      const sent = await sendFile(host, { file_url: upload.file_url, file_name: 'session-notes.pdf', file_size: bytes.length, file_type: 'application/pdf' });
      t.equal(sent.status, 201, JSON.stringify(sent.body));
      t.match(sent.body, { type: 'file', body: 'Here is the document I mentioned', file_url: upload.file_url, file_name: 'session-notes.pdf', file_size: bytes.length, file_type: 'application/pdf' });
      const frame = await annSocket.waitFor((m) => m.type === 'new_message' && m.message.id === sent.body.id);
      t.equal(frame.message.file_url, upload.file_url);

      const resolved = await fetch(frame.message.file_url, { headers: { authorization: `Bearer ${ann.token}` }, redirect: 'manual' });
      t.equal(resolved.status, 302);
      const location = resolved.headers.get('location')!;
      if (driver === 's3') t.ok(location.startsWith(s3.endpoint), 'a signed S3 URL');
      const downloaded = await fetch(location);
      t.equal(downloaded.status, 200);
      t.ok(Buffer.from(await downloaded.arrayBuffer()).equals(bytes), 'the same bytes');

      const stranger = await fetch(upload.file_url, { headers: { authorization: `Bearer ${eve.token}` }, redirect: 'manual' });
      t.equal(stranger.status, 403);
      t.match(await stranger.json(), { error: { code: 'forbidden' } });
      const anonymous = await fetch(upload.file_url, { redirect: 'manual' });
      t.equal(anonymous.status, 401);
      t.match(await anonymous.json(), { error: { code: 'unauthorized' } });
      const unknown = await fetch(`${server.baseUrl}/v1/chat/files/01JN2XA0B1C2D3E4F5G6H7J8K9`, { headers: { authorization: `Bearer ${ann.token}` }, redirect: 'manual' });
      t.equal(unknown.status, 404);
    });

    t.test('a file never uploaded, or uploaded with another size or type, cannot be sent', async (t) => {
      const never = (await declare(host, { file_name: 'a.png', file_size: 10, file_type: 'image/png' })).body.upload;
      const refused = await sendFile(host, { file_url: never.file_url });
      t.equal(refused.status, 400);
      t.match(refused.body, { error: { code: 'validation_failed', message: /never uploaded/ } });

      const bigger = (await declare(host, { file_name: 'b.png', file_size: 10, file_type: 'image/png' })).body.upload;
      t.equal((await put(bigger, randomBytes(12))).status, 200);
      t.match((await sendFile(host, { file_url: bigger.file_url })).body, { error: { code: 'validation_failed', message: /12 bytes, not the declared 10/ } });

      const retyped = (await declare(host, { file_name: 'c.png', file_size: 10, file_type: 'image/png' })).body.upload;
      const wrongType = await put(retyped, randomBytes(10), 'text/plain');
      // The S3 URL signs the Content-Type, so AWS refuses such a PUT itself (s3rver stores it anyway); the
      // local driver stores it. Either way the send must refuse.
      t.ok([200, 403].includes(wrongType.status), `PUT answered ${wrongType.status}`);
      const refusedType = await sendFile(host, { file_url: retyped.file_url });
      t.equal(refusedType.status, 400);
      t.equal(refusedType.body.error.code, 'validation_failed');

      const good = (await declare(host, { file_name: 'd.png', file_size: 10, file_type: 'image/png' })).body.upload;
      t.equal((await put(good, randomBytes(10))).status, 200);
      t.match((await sendFile(host, { file_url: good.file_url, file_size: 11 })).body, { error: { code: 'validation_failed', message: /file_size differs/ } });
      t.match((await sendFile(host, { file_url: good.file_url, file_type: 'image/gif' })).body, { error: { code: 'validation_failed', message: /file_type differs/ } });
      t.match((await sendFile(host, { file_url: good.file_url, file_name: 'other.png' })).body, { error: { code: 'validation_failed', message: /file_name differs/ } });
      t.match((await sendFile(host, { file_url: `${server.baseUrl}/somewhere/else.png` })).body, { error: { code: 'validation_failed' } });
      // Another user's upload is not the sender's to send (an admin or host could otherwise share files it never saw).
      const admin = await createAccount(server, 'admin', 'Ada');
      const adminConversation = (await server.api('/v1/chat/conversations', { method: 'POST', token: admin.token, body: { user_id: ann.id } })).body.id;
      const stolen = await server.api(`/v1/chat/conversations/${adminConversation}/messages`, { method: 'POST', token: admin.token, body: { body: '', type: 'file', file_url: good.file_url } });
      t.equal(stolen.status, 400);
      t.equal((await sendFile(host, { file_url: good.file_url, file_name: 'd.png', file_size: 10, file_type: 'image/png' })).status, 201, 'the matching declaration is sent');
      const files = await server.ctx.db.selectFrom('chat_messages').select('id').where('type', '=', 'file').where('conversation_id', '=', conversation).execute();
      t.equal(files.length, 2, 'only the two complete files were stored as messages');
    });

    t.test('declaring: over chat.max_file_bytes 413, a type not allowed 400, bad names 400, the API key 403', async (t) => {
      const tooBig = await declare(host, { file_name: 'big.pdf', file_size: 1024 * 1024 + 1, file_type: 'application/pdf' });
      t.equal(tooBig.status, 413);
      t.match(tooBig.body, { error: { code: 'payload_too_large', details: { limit_bytes: 1024 * 1024 } } });
      const exe = await declare(host, { file_name: 'setup.exe', file_size: 10, file_type: 'application/x-msdownload' });
      t.equal(exe.status, 400);
      t.match(exe.body, { error: { code: 'validation_failed', details: { field: 'file_type' } } });
      t.equal((await declare(host, { file_name: '../etc/passwd', file_size: 10, file_type: 'text/plain' })).status, 400);
      t.equal((await declare(host, { file_name: 'a.txt', file_size: 0, file_type: 'text/plain' })).status, 400);
      t.equal((await declare(host, { file_name: 'a.txt', file_size: 10, file_type: 'text' })).status, 400);
      const key = await server.api('/v1/chat/uploads', { method: 'POST', apiKey: true, body: { file_name: 'a.txt', file_size: 10, file_type: 'text/plain' } });
      t.equal(key.status, 403);
    });
  });
}

