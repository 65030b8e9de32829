import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

export interface LoggerConfig {
  level: string;
  /** 'auto' pretty-prints only when stdout is a TTY. */
  pretty: boolean | 'auto';
}

export function createLogger(config: LoggerConfig, base: Record<string, unknown> = {}): Logger {
  const pretty = config.pretty === 'auto' ? Boolean(process.stdout.isTTY) : config.pretty;
  const options: LoggerOptions = {
    level: config.level,
    base: { service: 'callplane', ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]', '*.password', '*.secret'], censor: '[redacted]' },
  };
  if (pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:standard' } } });
  }
  return pino(options);
}

/** A logger that discards everything, for tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
