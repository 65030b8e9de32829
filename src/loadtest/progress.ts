/**
 * The live progress line on stderr: a cli-progress bar of received tracks on a terminal, else a
 * plain line every 2 s (logs and CI keep one line per update, not a redrawn one).
 */
import cliProgress from 'cli-progress';

const PLAIN_EVERY_MS = 2000;

export interface ProgressState {
  joined: number;
  failed: number;
  received: number;
  lossPct: number;
}

export interface Progress {
  update(state: ProgressState): void;
  stop(): void;
}

export function createProgress(expectedTracks: number, expectedPeers: number): Progress {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: 'loadtest [{bar}] tracks {value}/{total} | peers {joined}/{peers} ({failed} failed) | loss {loss}% | {duration}s',
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(expectedTracks, 0, { joined: 0, peers: expectedPeers, failed: 0, loss: '0.00' });
    return {
      update: (s) => bar.update(s.received, { joined: s.joined, peers: expectedPeers, failed: s.failed, loss: s.lossPct.toFixed(2) }),
      stop: () => bar.stop(),
    };
  }
  let lastPrinted = 0;
  const started = Date.now();
  return {
    update(s) {
      const now = Date.now();
      if (now - lastPrinted < PLAIN_EVERY_MS) return;
      lastPrinted = now;
      process.stderr.write(
        `loadtest ${Math.round((now - started) / 1000)}s: peers ${s.joined}/${expectedPeers} joined, ${s.failed} failed; tracks ${s.received}/${expectedTracks} received; loss ${s.lossPct.toFixed(2)}%\n`,
      );
    },
    stop: () => undefined,
  };
}
