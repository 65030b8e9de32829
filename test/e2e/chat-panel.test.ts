/**
 * The demo page's chat panel in real Chromium against a real server: two hosts (hosts may always
 * write) sign in through the demo page; one starts a conversation and writes, the other sees the
 * unread badge, opens the thread (the writer sees "Read"), types (the writer sees it), and attaches
 * a file that the first downloads with the same bytes; then one follows the other and gets a
 * broadcast.
 */
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { startTestServer } from '../helpers/server.ts';
import { browserTest, dumpPageLogsOnFailure, ensureWebBuilt, launchClient, openDemo, waitFor, waitForState, type Client } from './helpers/browser.ts';

t.setTimeout(120_000);

async function signInAsHost(client: Client, baseUrl: string, name: string): Promise<string> {
  await openDemo(client, baseUrl);
  await client.page.getByTestId('login-name').fill(name);
  await client.page.getByTestId('login-host').check();
  await client.page.getByTestId('login-button').click();
  await waitForState(client, 'lobby');
  await waitFor(`${name}'s chat socket`, () => client.page.evaluate(() => document.getElementById('chat-connection')?.dataset.connected === 'true'), { logs: client.logs });
  return client.page.evaluate(() => window.callplane.me!.id);
}

browserTest(t, 'two pages chat through the demo panel: unread badge, read receipt, typing, an attached file downloaded by the other side, a broadcast', async (t) => {
  ensureWebBuilt();
  const [server, ana, ben] = await Promise.all([startTestServer(t), launchClient(t, 'Ana'), launchClient(t, 'Ben')]);
  dumpPageLogsOnFailure(t, [ana, ben]);
  const anaId = await signInAsHost(ana, server.baseUrl, 'Ana');
  const benId = await signInAsHost(ben, server.baseUrl, 'Ben');

  // Ana picks Ben from the people list (refreshed: Ben signed in after her) and writes.
  await ana.page.getByTestId('chat-refresh-people').click();
  await ana.page.locator(`[data-testid=chat-person][data-user-id="${benId}"] [data-testid=chat-with]`).click();
  await ana.page.getByTestId('chat-thread').waitFor({ state: 'visible' });
  await ana.page.getByTestId('chat-input').fill('Hello Ben');
  await ana.page.getByTestId('chat-send').click();
  await ana.page.locator('[data-testid=chat-message][data-mine=true]').filter({ hasText: 'Hello Ben' }).waitFor();
  t.equal(await ana.page.getByTestId('chat-read-state').innerText(), 'Sent', 'not read yet');

  // Ben's list gains the conversation with an unread badge of 1.
  const benConversation = ben.page.locator(`[data-testid=chat-conversation][data-peer-id="${anaId}"]`);
  await waitFor('Ben\'s unread badge', async () => (await benConversation.getAttribute('data-unread').catch(() => null)) === '1', { logs: ben.logs });
  t.equal(await benConversation.getByTestId('unread-badge').innerText(), '1');
  t.ok(await benConversation.getByTestId('unread-badge').isVisible());

  // Ben opens it: his badge clears, Ana's message shows as read.
  await benConversation.click();
  await ben.page.locator('[data-testid=chat-message][data-mine=false]').filter({ hasText: 'Hello Ben' }).waitFor();
  await waitFor('Ben\'s badge to clear', async () => (await benConversation.getAttribute('data-unread')) === '0', { logs: ben.logs });
  t.notOk(await benConversation.getByTestId('unread-badge').isVisible(), 'no badge once read');
  await waitFor('Ana to see the read receipt', async () => (await ana.page.getByTestId('chat-read-state').innerText()) === 'Read', { logs: ana.logs });
  t.equal(await ana.page.getByTestId('chat-read-state').innerText(), 'Read', 'the read receipt reached the sender');

  // Ben types: Ana sees it.
  await ben.page.getByTestId('chat-input').fill('Here');
  await ana.page.getByTestId('chat-typing').waitFor({ state: 'visible' });
  t.equal(await ana.page.getByTestId('chat-typing').innerText(), 'Ben is typing…');

  // Ben attaches a file; Ana downloads it and gets the same bytes.
  const bytes = Buffer.from(`session notes ${Date.now()}\n`.repeat(50));
  await ben.page.getByTestId('chat-file').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: bytes });
  await ben.page.getByTestId('chat-send').click();
  const fileButton = ana.page.locator('[data-testid=chat-message][data-mine=false] [data-testid=chat-file-download]');
  await fileButton.waitFor({ timeout: 20_000 });
  t.equal(await fileButton.getAttribute('data-file-name'), 'notes.txt');
  const [download] = await Promise.all([ana.page.waitForEvent('download'), fileButton.click()]);
  t.equal(download.suggestedFilename(), 'notes.txt');
  const saved = await readFile((await download.path())!);
  t.ok(saved.equals(bytes), 'the downloaded file has the uploaded bytes');

  // Ben follows Ana; Ana broadcasts; it reaches Ben in their conversation.
  await ben.page.locator(`[data-testid=chat-person][data-user-id="${anaId}"] [data-testid=chat-follow]`).click();
  await waitFor('the follow', async () => (await server.ctx.db.selectFrom('chat_follows').select('user_id').where('host_id', '=', anaId).execute()).length === 1, { logs: ben.logs });
  await ana.page.getByTestId('chat-broadcast-body').fill('Office hours at 3pm');
  await ana.page.getByTestId('chat-broadcast-send').click();
  await waitFor('the broadcast result', async () => (await ana.page.getByTestId('chat-broadcast-result').innerText()) === 'Sent to 1 follower', { logs: ana.logs });
  const broadcast = ben.page.locator('[data-testid=chat-message][data-mine=false]').filter({ hasText: 'Office hours at 3pm' });
  await broadcast.waitFor({ timeout: 20_000 });
  t.ok(await broadcast.isVisible(), 'the broadcast arrived in the open thread');
  const errors = [...ana.logs, ...ben.logs].filter((line) => line.includes('pageerror'));
  t.same(errors, [], 'no uncaught page errors');
});
