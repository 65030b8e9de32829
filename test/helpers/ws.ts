/* eslint-disable @typescript-eslint/no-explicit-any -- messages read off the wire are JSON of many shapes */
import WebSocket from 'ws';

/** A WebSocket that records every JSON message and lets a test wait for one matching a predicate. */
export function recorder(url: string) {
  const ws = new WebSocket(url);
  const messages: any[] = [];
  const waiters: Array<{ match: (m: any) => boolean; resolve: (m: any) => void }> = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
  ws.on('message', (raw) => {
    const message = JSON.parse(String(raw));
    messages.push(message);
    for (const waiter of waiters.splice(0)) {
      if (waiter.match(message)) waiter.resolve(message);
      else waiters.push(waiter);
    }
  });
  const waitFor = (match: (m: any) => boolean): Promise<any> => {
    const seen = messages.find(match);
    return seen ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ match, resolve }));
  };
  return { ws, messages, waitFor, closed };
}
