#!/usr/bin/env node
// Prints free loopback ports for a throwaway callplane, space-separated:
//   <tcp> ... <tcp> <media base>
// Usage: free-ports.mjs <number of TCP ports> <media workers>
// The TCP ports are picked by the kernel (listen on port 0) and are distinct. The media base is
// the first of <media workers> consecutive ports free on both TCP and UDP (a WebRtcServer binds
// port_base + i on both). Ports are released before printing, so another program may take one
// in between; the caller fails loudly if the server then cannot bind.
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

const tcpCount = Number(process.argv[2] ?? '2');
const mediaWorkers = Number(process.argv[3] ?? '1');

function kernelPort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function tcpFree(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function udpFree(port) {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

const taken = new Set();
const ports = [];
while (ports.length < tcpCount) {
  const port = await kernelPort();
  if (!taken.has(port)) {
    taken.add(port);
    ports.push(port);
  }
}

// Media: a pid-derived start in 30000-39999, stepping past anything in use (the range overlaps
// Linux's ephemeral ports, so every candidate is checked on TCP and UDP).
let base = 30000 + ((process.pid * 53) % 9000);
let found = null;
for (let attempt = 0; attempt < 500 && found === null; attempt += 1, base += mediaWorkers + 1) {
  if (base + mediaWorkers > 39999) base = 30000;
  let free = true;
  for (let port = base; port < base + mediaWorkers && free; port += 1) {
    free = !taken.has(port) && (await tcpFree(port)) && (await udpFree(port));
  }
  if (free) found = base;
}
if (found === null) {
  console.error('free-ports: no free media port range found in 30000-39999');
  process.exit(1);
}
console.log([...ports, found].join(' '));
