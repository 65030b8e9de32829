import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError, loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { UserService, toUserDto } from '../identity/users.ts';
import { loadOrCreateSigningKey, signingKeyPath } from '../identity/keys.ts';
import { TokenService } from '../identity/tokens.ts';
import { LinkService } from '../calls/paid/links.ts';
import { createLogger } from '../shared/logger.ts';
import { systemClock } from '../shared/clock.ts';
import { isUlid } from '../shared/ids.ts';
import { isAppError } from '../shared/errors.ts';
import { runDoctor } from './doctor.ts';
import { withDatabase } from './database.ts';
import { registerLoadtestCommand } from '../loadtest/command.ts';

/** Exit codes: 1 runtime failure, 2 bad configuration or arguments. */
function configOrExit(): Readonly<Config> {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`callplane: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

function ulidArg(value: string): string {
  if (!isUlid(value)) throw new InvalidArgumentError('must be a user id (ULID)');
  return value;
}

function positiveInt(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) throw new InvalidArgumentError('must be a positive integer');
  return parsed;
}

function quietLogger(config: Readonly<Config>) {
  return createLogger({ level: config.log.level === 'info' ? 'warn' : config.log.level, pretty: config.log.pretty });
}

// exitOverride before any subcommand is added, so they inherit it: argument errors then reach our catch.
const program = new Command('callplane').description('Self-hosted media plane for video calls').showHelpAfterError().exitOverride();

program
  .command('serve')
  .description('run the server (REST, WebSocket, media workers) until SIGTERM/SIGINT')
  .action(async () => {
    const config = configOrExit();
    const { startServer } = await import('../main.ts');
    const server = await startServer(config);
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals += 1;
      if (signals > 1) {
        server.ctx.logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      server.ctx.logger.info({ signal }, 'signal received: graceful shutdown');
      server.stop().then(
        () => process.exit(0),
        (error: unknown) => {
          server.ctx.logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });

program
  .command('migrate')
  .description('apply database migrations')
  .action(async () => {
    const config = configOrExit();
    await withDatabase(config, quietLogger(config), async () => undefined);
    process.stdout.write('migrations: up to date\n');
  });

const user = program.command('user').description('manage users');
user
  .command('create')
  .description('create a user and print it as JSON')
  .requiredOption('--name <display name>', 'display name')
  .addOption(new Option('--role <role>', 'role').choices(['guest', 'user', 'host', 'admin']).default('user'))
  .option('--first-name <name>')
  .option('--last-name <name>')
  .option('--rate <decimal>', 'host default per-minute rate, e.g. 2.00')
  .option('--currency <iso>', 'lowercase ISO currency, e.g. usd')
  .action(async (options: { name: string; role: 'guest' | 'user' | 'host' | 'admin'; firstName?: string; lastName?: string; rate?: string; currency?: string }) => {
    const config = configOrExit();
    const created = await withDatabase(config, quietLogger(config), (db) =>
      new UserService(db, systemClock).create({
        display_name: options.name,
        role: options.role,
        ...(options.firstName ? { first_name: options.firstName } : {}),
        ...(options.lastName ? { last_name: options.lastName } : {}),
        ...(options.rate ? { default_rate: options.rate } : {}),
        ...(options.currency ? { currency: options.currency } : {}),
      }),
    );
    process.stdout.write(`${JSON.stringify({ user: toUserDto(created) }, null, 2)}\n`);
  });

const token = program.command('token').description('access tokens');
token
  .command('create')
  .description('mint an access token for a user and print it as JSON')
  .requiredOption('--user <id>', 'user id (ULID)', ulidArg)
  .option('--ttl <seconds>', 'lifetime in seconds', positiveInt)
  .action(async (options: { user: string; ttl?: number }) => {
    const config = configOrExit();
    const minted = await withDatabase(config, quietLogger(config), async (db) => {
      const row = await new UserService(db, systemClock).get(options.user);
      const key = await loadOrCreateSigningKey(signingKeyPath(config.data_dir, config.auth.signing_key_file), config.auth.signing_key_file === null);
      return new TokenService(key, config.auth, systemClock).mint({ userId: row.id, role: row.role, ...(options.ttl ? { ttlSeconds: options.ttl } : {}) });
    });
    process.stdout.write(`${JSON.stringify({ access_token: minted.accessToken, expires_at: minted.expiresAt.toISOString() }, null, 2)}\n`);
  });

const link = program.command('link').description('paid call links');
link
  .command('create')
  .description('create a paid call link for a host and print it as JSON')
  .requiredOption('--host <id>', 'host user id (ULID; role host or admin)', ulidArg)
  .requiredOption('--rate <decimal>', 'per-minute rate, e.g. 2.00 (0.00: a free link)')
  .requiredOption('--currency <iso>', 'lowercase ISO currency, e.g. usd')
  .option('--window <minutes>', 'billing window, 1–60 minutes (default 10)', positiveInt)
  .option('--max-uses <n>', 'how many calls the link allows', positiveInt)
  .option('--expires-at <rfc3339>', 'when the link stops working')
  .action(async (options: { host: string; rate: string; currency: string; window?: number; maxUses?: number; expiresAt?: string }) => {
    const config = configOrExit();
    const baseUrl = config.http.public_url ?? `http://127.0.0.1:${config.http.port}`;
    const created = await withDatabase(config, quietLogger(config), (db) =>
      new LinkService(db, systemClock).create(
        { userId: null, isAdmin: true, role: null },
        {
          host_id: options.host,
          rate_per_minute: options.rate,
          currency: options.currency,
          ...(options.window ? { window_size_minutes: options.window } : {}),
          ...(options.maxUses ? { max_uses: options.maxUses } : {}),
          ...(options.expiresAt ? { expires_at: options.expiresAt } : {}),
        },
        baseUrl,
      ),
    );
    process.stdout.write(`${JSON.stringify({ link: created }, null, 2)}\n`);
  });

registerLoadtestCommand(program);

program
  .command('doctor')
  .description('check ports, the media worker binary, ffmpeg, storage and the database (one line each)')
  .action(async () => {
    const config = configOrExit();
    const lines = await runDoctor(config);
    const width = Math.max(...lines.map((l) => l.check.length));
    for (const line of lines) process.stdout.write(`${line.ok ? 'ok  ' : 'FAIL'}  ${line.check.padEnd(width)}  ${line.detail}\n`);
    // Explicit exit: a loaded native module (uWS) otherwise leaves the status at 0.
    process.exit(lines.every((l) => l.ok) ? 0 : 1);
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : 2); // commander already printed why
  if (isAppError(error)) {
    process.stderr.write(`callplane: ${error.code}: ${error.message}\n`);
    process.exit(error.status === 400 || error.status === 404 ? 2 : 1);
  }
  process.stderr.write(`callplane: ${(error as Error).message ?? String(error)}\n`);
  process.exit(1);
});
