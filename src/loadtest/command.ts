/**
 * `callplane loadtest` (docs/loadtest.md): the options, their checks, and the exit codes —
 * 0 when at least 95% of the expected tracks arrived, 1 when fewer did, 2 for bad arguments, an
 * unreachable target or a refused API key, with the reason as the last line on stderr.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { CallplaneApi, TargetError } from './api.ts';
import { ensureMediaFixtures } from './media-files.ts';
import type { Engine } from './peer.ts';
import { compareReports, summaryTable, type LoadtestConfig, type LoadtestReport } from './report.ts';

export const PASS_RATIO = 0.95;
const EXIT_OK = 0;
const EXIT_TRACKS_MISSING = 1;
const EXIT_BAD_INPUT = 2;

class UsageError extends Error {}

function integer(min: number, max: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed < min || parsed > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    return parsed;
  };
}

function positiveNumber(max: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (value.trim() === '' || !Number.isFinite(parsed) || parsed <= 0 || parsed > max) throw new InvalidArgumentError(`must be a number above 0, at most ${max}`);
    return parsed;
  };
}

function baseUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('must be an http(s) URL, e.g. http://127.0.0.1:8080');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('must be an http(s) URL, e.g. http://127.0.0.1:8080');
  return url.toString().replace(/\/+$/, '');
}

interface CommandOptions {
  url?: string;
  apiKey?: string;
  rooms: number;
  publishers: number;
  subscribers: number;
  media: 'audio' | 'video' | 'both';
  videoBitrate: number;
  simulcast: boolean;
  engine: 'werift' | 'wrtc';
  receiver: 'full' | 'light';
  duration: number;
  ramp: number;
  json?: string;
  compare?: string[];
}

function readReport(path: string): LoadtestReport {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`--compare: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    const report = JSON.parse(text) as LoadtestReport;
    if (!report || typeof report !== 'object' || !report.config || !report.tracks) throw new Error('no config or tracks field');
    return report;
  } catch (error) {
    throw new UsageError(`--compare: ${path} is not a load test report (${(error as Error).message})`);
  }
}

// The engines load their WebRTC stacks (werift alone takes seconds to import): only the one asked for.
async function engineFor(options: CommandOptions): Promise<Engine> {
  if (options.engine === 'wrtc') {
    const { createWrtcEngine } = await import('./engine-wrtc.ts');
    return createWrtcEngine({ videoKbps: options.videoBitrate, simulcast: options.simulcast });
  }
  if (await ensureMediaFixtures(options.videoBitrate)) process.stderr.write(`loadtest: made the ${options.videoBitrate} kbps VP8 clip with ffmpeg (cached for the next runs)\n`);
  const { createWeriftEngine } = await import('./engine-werift.ts');
  return createWeriftEngine({ videoKbps: options.videoBitrate, receiver: options.receiver });
}

async function execute(options: CommandOptions): Promise<number> {
  if (options.compare) {
    if (options.compare.length !== 2) throw new UsageError('--compare takes two report files: --compare a.json b.json');
    const [a, b] = options.compare as [string, string];
    process.stdout.write(compareReports(readReport(a), readReport(b), [a, b]));
    return EXIT_OK;
  }
  if (!options.url) throw new UsageError('--url <base url> is required (the callplane server to load, e.g. http://127.0.0.1:8080)');
  if (options.simulcast && options.engine !== 'wrtc') throw new UsageError('--simulcast needs --engine wrtc (the werift engine sends one pre-encoded stream per track)');
  if (options.receiver === 'light' && options.engine !== 'werift') throw new UsageError('--receiver light needs --engine werift (libwebrtc keeps its RTP to itself)');
  const apiKey = options.apiKey ?? process.env.CALLPLANE_API_KEY;
  if (!apiKey) throw new UsageError('an API key is required: --api-key <key> or CALLPLANE_API_KEY (the operator key, see `callplane doctor`)');
  const config: LoadtestConfig = {
    url: options.url,
    rooms: options.rooms,
    publishers: options.publishers,
    subscribers: options.subscribers,
    media: options.media,
    video_bitrate_kbps: options.videoBitrate,
    simulcast: options.simulcast,
    engine: options.engine,
    receiver: options.receiver,
    duration_s: options.duration,
    ramp_peers_per_s: options.ramp,
  };
  const controller = new AbortController();
  let interrupts = 0;
  process.on('SIGINT', () => {
    interrupts += 1;
    if (interrupts > 1) process.exit(130);
    process.stderr.write('loadtest: interrupted, cleaning up (again to quit at once)\n');
    controller.abort();
  });
  await new CallplaneApi(config.url, apiKey).verify();
  const engine = await engineFor(options);
  const { runLoadtest } = await import('./run.ts');
  const report = await runLoadtest({ config, apiKey, engine, signal: controller.signal });
  process.stdout.write(summaryTable(report));
  if (options.json) writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
  for (const error of report.errors.slice(0, 5)) process.stderr.write(`loadtest: ${error}\n`);
  const engineSummary = engine.summary?.();
  if (engineSummary) process.stderr.write(`loadtest: ${engineSummary}\n`);
  if (report.interrupted) {
    process.stderr.write('loadtest: interrupted before the end of the run\n');
    return 130;
  }
  const passed = report.tracks.received >= PASS_RATIO * report.tracks.expected;
  process.stderr.write(
    passed
      ? `loadtest: ok: ${report.tracks.received} of ${report.tracks.expected} expected tracks arrived\n`
      : `loadtest: only ${report.tracks.received} of ${report.tracks.expected} expected tracks arrived (${report.tracks.received_pct}%, needs ${PASS_RATIO * 100}%)\n`,
  );
  return passed ? EXIT_OK : EXIT_TRACKS_MISSING;
}

/** Adds `loadtest` to the CLI program. */
export function registerLoadtestCommand(program: Command): void {
  program
    .command('loadtest')
    .description('drive simulated WebRTC peers against a callplane server and report what arrived (docs/loadtest.md)')
    .showHelpAfterError(false)
    .option('--url <base url>', 'the callplane server, e.g. http://127.0.0.1:8080', baseUrl)
    .option('--api-key <key>', 'operator API key (default: CALLPLANE_API_KEY)')
    .option('--rooms <n>', 'rooms', integer(1, 1000), 1)
    .option('--publishers <n>', 'publishers per room', integer(1, 1000), 2)
    .option('--subscribers <n>', 'subscribers per room (receive only)', integer(0, 10000), 2)
    .addOption(new Option('--media <kinds>', 'what publishers send').choices(['audio', 'video', 'both']).default('both'))
    .option('--video-bitrate <kbps>', 'video bitrate per publisher', integer(50, 5000), 500)
    .option('--simulcast', 'publish video as three simulcast layers (wrtc engine)', false)
    .addOption(new Option('--engine <engine>', 'WebRTC stack of the simulated peers').choices(['werift', 'wrtc']).default('werift'))
    .addOption(new Option('--receiver <path>', "subscribers' receive path (werift): full, or light = count SRTP headers without decrypting (benchmarks)").choices(['full', 'light']).default('full'))
    .option('--duration <seconds>', 'how long to hold the load once every peer has joined', positiveNumber(86_400), 30)
    .option('--ramp <peers/s>', 'peers joining per second', positiveNumber(10_000), 10)
    .option('--json <file>', 'write the report as JSON to this file')
    .option('--compare <files...>', 'compare two JSON reports (a.json b.json) and exit; needs no --url')
    .action(async (options: CommandOptions) => {
      let code: number;
      try {
        code = await execute(options);
      } catch (error) {
        if (error instanceof UsageError || error instanceof TargetError) {
          process.stderr.write(`callplane loadtest: ${error.message}\n`);
          code = EXIT_BAD_INPUT;
        } else {
          process.stderr.write(`callplane loadtest: ${(error as Error).stack ?? String(error)}\n`);
          process.stderr.write(`callplane loadtest: failed: ${(error as Error).message}\n`);
          code = EXIT_TRACKS_MISSING;
        }
      }
      // Explicit exit: open sockets and native WebRTC objects would keep the process alive (and wrtc
      // crashes when Node tears it down with tracks still alive).
      process.exit(code);
    });
}
