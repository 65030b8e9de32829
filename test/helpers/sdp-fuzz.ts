/**
 * Seeded SDP mutations for the SDP bridge's fuzz tests: real Chrome offers (test/fixtures/sdp/)
 * with lines dropped, duplicated, swapped, truncated, or with numbers and tokens replaced.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/sdp');

/** A real Chrome offer captured into test/fixtures/sdp/ (CRLF line ends, as a browser sends). */
export function chromeOffer(name: 'chrome-sendrecv' | 'chrome-simulcast-recvonly-data'): string {
  return readFileSync(join(fixtures, `${name}.sdp`), 'utf8').replace(/\r?\n/g, '\r\n');
}


const TOKENS = ['0', '-1', '4294967296', '127', '128', '999999999999', '', ' ', 'actpass', 'active', 'passive', 'holdconn', 'BUNDLE', 'FID', 'SIM', 'rtx', 'VP8', 'H264', 'opus', 'send', 'recv', '*', ':', ';', '=', '\u0000', '\u00e9', 'sendonly', 'recvonly', 'inactive', 'apt=96', 'apt=999', 'profile-level-id=zz'];

/** One mutation of `sdp`, 1 to 4 edits deep. */
export function mutate(sdp: string, random: () => number): string {
  const int = (n: number) => Math.floor(random() * n);
  let lines = sdp.split('\r\n').filter(Boolean);
  const edits = 1 + int(4);
  for (let e = 0; e < edits && lines.length > 0; e++) {
    const i = int(lines.length);
    const line = lines[i]!;
    switch (int(8)) {
      case 0: lines.splice(i, 1); break; // drop a line
      case 1: lines.splice(int(lines.length), 0, line); break; // duplicate it elsewhere
      case 2: { const j = int(lines.length); [lines[i], lines[j]] = [lines[j]!, line]; break; } // swap two
      case 3: lines[i] = line.slice(0, int(line.length + 1)); break; // truncate
      case 4: lines[i] = line.replace(/\d+/, () => TOKENS[int(6)]!); break; // a bad number
      case 5: { const words = line.split(' '); words[int(words.length)] = TOKENS[int(TOKENS.length)]!; lines[i] = words.join(' '); break; }
      case 6: lines = lines.filter((l) => !l.startsWith(line.slice(0, 6))); break; // drop every line of one attribute kind
      default: lines[i] = line + TOKENS[int(TOKENS.length)]!; break;
    }
  }
  return lines.join('\r\n') + '\r\n';
}
