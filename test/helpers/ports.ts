import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

// Below the kernel's ephemeral range (32768+): an outgoing connection can never be holding one of these.
let cursor = 22000 + ((process.pid * 37) % 9000);

/**
 * A base port with `count` consecutive ports free on UDP and TCP, for media workers. Test files run
 * in parallel processes, so each starts its search at a pid-derived offset.
 */
export async function freePortBase(count: number): Promise<number> {
  for (let attempts = 0; attempts < 200; attempts += 1) {
    const base = cursor;
    cursor += count + 1;
    if (cursor > 31500) cursor = 22000;
    let free = true;
    for (let port = base; port < base + count && free; port += 1) free = (await tcpFree(port)) && (await udpFree(port));
    if (free) return base;
  }
  throw new Error('no free media port range found');
}

/** A TCP port the kernel reports free on loopback right now (for a throwaway embedded PostgreSQL). */
export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
