/**
 * UDP ports of the capture, from recording.port_range, in blocks of 4 (ffmpeg's RTP and RTCP
 * ports, mediasoup's PlainTransport port, one spare), each block checked free on 127.0.0.1 before
 * it is handed out: other programs may use ports of the range.
 */
import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { AppError } from '../shared/errors.ts';

export interface PortBlock {
  base: number;
  rtp: number;
  rtcp: number;
  local: number;
}

export class CapturePorts {
  readonly #taken = new Set<number>();
  readonly #first: number;
  readonly #blocks: number;
  #next = 0;

  constructor(range: { min: number; max: number }) {
    this.#first = range.min % 2 === 0 ? range.min : range.min + 1;
    this.#blocks = Math.floor((range.max - this.#first + 1) / 4);
  }

  get capacity(): number {
    return this.#blocks;
  }

  /** A free block (round robin, so a port just released is not reused at once), or 503 when none is free. */
  async take(): Promise<PortBlock> {
    for (let tried = 0; tried < this.#blocks; tried++) {
      const base = this.#first + 4 * ((this.#next + tried) % this.#blocks);
      if (this.#taken.has(base)) continue;
      this.#taken.add(base);
      if (await allFree([base, base + 1, base + 2])) {
        this.#next = (this.#next + tried + 1) % this.#blocks;
        return { base, rtp: base, rtcp: base + 1, local: base + 2 };
      }
      this.#taken.delete(base);
    }
    throw new AppError('service_unavailable', 'No free capture ports in recording.port_range');
  }

  release(block: PortBlock): void {
    this.#taken.delete(block.base);
  }
}

async function allFree(ports: number[]): Promise<boolean> {
  for (const port of ports) if (!(await udpFree(port))) return false;
  return true;
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

/** Whether some process has UDP port `port` bound on 127.0.0.1 or 0.0.0.0 (Linux: /proc/net/udp). */
export async function udpBound(port: number): Promise<boolean> {
  const table = await readFile('/proc/net/udp', 'utf8');
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return table.split('\n').some((line) => {
    const local = line.trim().split(/\s+/)[1];
    return local === `0100007F:${hex}` || local === `00000000:${hex}`;
  });
}
