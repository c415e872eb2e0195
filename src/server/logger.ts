import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino';
import type { LogLevel } from './config.ts';

/**
 * Structured JSON logs shaped like etcd's zap output
 * (`{"level":"info","ts":"2024-01-01T00:00:00.000Z","name":"default","msg":"..."}`),
 * with the member name bound once. Writes are synchronous: logging happens at startup,
 * shutdown and on rare events, never per request, and nothing is lost when the process exits.
 */

export type { Logger } from 'pino';

export interface CreateLoggerOptions {
  /** The member name, bound to every line as `name`. */
  readonly name: string;
  readonly level: LogLevel;
  /** etcd's `--log-outputs`: `default` and `stderr` (fd 2), `stdout` (fd 1), or file paths (appended). */
  readonly outputs?: readonly string[];
}

/** etcd's levels onto pino's: zap's `panic` has no pino twin and logs as `fatal`. */
function pinoLevel(level: LogLevel): string {
  return level === 'panic' ? 'fatal' : level;
}

function baseOptions(name: string, level: string): LoggerOptions {
  return {
    level,
    base: { name },
    messageKey: 'msg',
    timestamp: () => `,"ts":"${new Date().toISOString()}"`,
    formatters: { level: (label) => ({ level: label }) },
  };
}

function destinationFor(output: string): DestinationStream {
  if (output === 'default' || output === 'stderr') return pino.destination({ dest: 2, sync: true });
  if (output === 'stdout') return pino.destination({ dest: 1, sync: true });
  return pino.destination({ dest: output, sync: true, append: true, mkdir: true });
}

export function createLogger(options: CreateLoggerOptions): Logger {
  const outputs = options.outputs === undefined || options.outputs.length === 0 ? ['default'] : options.outputs;
  const level = pinoLevel(options.level);
  const unique = [...new Set(outputs.map((o) => (o === 'default' ? 'stderr' : o)))];
  const stream =
    unique.length === 1
      ? destinationFor(unique[0]!)
      : pino.multistream(unique.map((o) => ({ stream: destinationFor(o), level: level as pino.Level })));
  return pino(baseOptions(options.name, level), stream);
}

/** A logger that writes nothing (tests, embedding applications that log elsewhere). */
export function createSilentLogger(name = 'default'): Logger {
  return pino({ ...baseOptions(name, 'silent'), enabled: false });
}

/** A logger writing etcd-shaped lines into any stream (tests read them back). */
export function createStreamLogger(name: string, level: LogLevel, stream: DestinationStream): Logger {
  return pino(baseOptions(name, pinoLevel(level)), stream);
}
