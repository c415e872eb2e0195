/**
 * etcdctl's global flags, their ETCDCTL_* variables, and the client and printer they make.
 *
 * As in etcdctl, the variables apply to the flags a command inherits, at the moment the
 * command builds its client: a variable for a flag also given on the command line is an error,
 * and an ETCDCTL_* variable no flag knows is reported and ignored.
 */
import { readFileSync } from 'node:fs';
import { Client, type ClientOptions, type TlsOptions } from '../client/index.ts';
import { CliExit, type Command, ExitCode, flag } from './command.ts';
import { type FlagSet, type FlagSpec, FlagType } from './flags.ts';
import type { CliIo } from './io.ts';
import { newPrinter, type Printer } from './printers/index.ts';

export const ENV_PREFIX = 'ETCDCTL';

export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  flag('endpoints', FlagType.STRING_SLICE, '[127.0.0.1:2379]', 'gRPC endpoints'),
  flag('debug', FlagType.BOOL, 'false', 'enable client-side debug logging'),
  flag('write-out', FlagType.STRING, 'simple', 'set the output format (fields, json, protobuf, simple, table)', 'w'),
  flag('hex', FlagType.BOOL, 'false', 'print byte strings as hex encoded strings'),
  flag('dial-timeout', FlagType.DURATION, '2s', 'dial timeout for client connections'),
  flag('command-timeout', FlagType.DURATION, '5s', 'timeout for short running command (excluding dial timeout)'),
  flag('keepalive-time', FlagType.DURATION, '2s', 'keepalive time for client connections'),
  flag('keepalive-timeout', FlagType.DURATION, '6s', 'keepalive timeout for client connections'),
  flag('insecure-transport', FlagType.BOOL, 'true', 'disable transport security for client connections'),
  flag('insecure-discovery', FlagType.BOOL, 'true', 'accept insecure SRV records describing cluster endpoints'),
  flag(
    'insecure-skip-tls-verify',
    FlagType.BOOL,
    'false',
    'skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)',
  ),
  flag('cert', FlagType.STRING, '', 'identify secure client using this TLS certificate file'),
  flag('key', FlagType.STRING, '', 'identify secure client using this TLS key file'),
  flag('cacert', FlagType.STRING, '', 'verify certificates of TLS-enabled secure servers using this CA bundle'),
  flag('user', FlagType.STRING, '', 'username[:password] for authentication (prompt if password is not supplied)'),
  flag(
    'password',
    FlagType.STRING,
    '',
    "password for authentication (if this option is used, --user option shouldn't include password)",
  ),
  flag('discovery-srv', FlagType.STRING, '', 'domain name to query for SRV records describing cluster endpoints', 'd'),
  flag('discovery-srv-name', FlagType.STRING, '', 'service name to query when using DNS discovery'),
];

const NS_PER_MS = 1_000_000n;

/** `ETCDCTL_DIAL_TIMEOUT` for `dial-timeout`. */
export function flagToEnv(name: string): string {
  return `${ENV_PREFIX}_${name.toUpperCase().replaceAll('-', '_')}`;
}

/** Go's log timestamp, as capnslog prints it: `2006-01-02 15:04:05.000000`. */
function logTime(): string {
  const d = new Date();
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}000`;
}

/**
 * Applies ETCDCTL_* variables to the inherited flags (etcd's flags.SetPflagsFromEnv). `extra`
 * names variables the command reads itself (watch's ETCDCTL_WATCH_KEY).
 */
export function applyEnv(command: Command, flags: FlagSet, io: CliIo, extra: readonly string[] = []): void {
  const inherited = command.inheritedFlags();
  const used = new Set<string>(extra.map(flagToEnv));
  const alreadySet = new Set<string>();
  for (const spec of inherited) {
    const envName = flagToEnv(spec.name);
    if (flags.changed(spec.name)) {
      alreadySet.add(envName);
      continue;
    }
    const value = io.env[envName];
    if (value === undefined || value === '') continue;
    used.add(envName);
    try {
      flags.setFromEnv(spec.name, value, envName);
    } catch {
      // etcdctl ignores a variable whose value does not parse: the flag keeps its value.
    }
  }
  for (const [name, value] of Object.entries(io.env)) {
    if (value === undefined || used.has(name)) continue;
    if (alreadySet.has(name)) {
      io.stderr.write(
        `${logTime()} C | pkg/flags: conflicting environment variable ${JSON.stringify(name)} is shadowed by corresponding command-line flag (either unset environment variable or disable flag)\n`,
      );
      throw new CliExit(ExitCode.ERROR);
    }
    if (name.startsWith(`${ENV_PREFIX}_`)) {
      io.stderr.write(`${logTime()} W | pkg/flags: unrecognized environment variable ${name}=${value}\n`);
    }
  }
}

export function printerFromFlags(flags: FlagSet, io: CliIo): Printer {
  const printer = newPrinter(flags.string('write-out'), flags.bool('hex'), io);
  if (printer === undefined) throw new CliExit(ExitCode.BAD_FEATURE, 'unsupported output format');
  return printer;
}

export interface ClientConfig {
  readonly endpoints: string[];
  readonly options: Omit<ClientOptions, 'endpoints'>;
}

/** The client settings of the global flags (after applyEnv). May ask for the password on stdin. */
export async function clientConfig(flags: FlagSet, io: CliIo): Promise<ClientConfig> {
  if (flags.string('discovery-srv') !== '') {
    throw new CliExit(ExitCode.ERROR, 'DNS discovery (--discovery-srv) is not supported by etcdctl-ts');
  }
  const endpoints = flags.strings('endpoints').map((e) => e.trim());
  const options: { -readonly [K in keyof ClientConfig['options']]: ClientConfig['options'][K] } = {
    dialTimeoutMs: Number(flags.duration('dial-timeout') / NS_PER_MS),
    callTimeoutMs: Math.max(1, Number(flags.duration('command-timeout') / NS_PER_MS)),
    keepaliveTimeMs: Number(flags.duration('keepalive-time') / NS_PER_MS),
    keepaliveTimeoutMs: Number(flags.duration('keepalive-timeout') / NS_PER_MS),
  };
  const tls = tlsFromFlags(flags);
  if (tls !== undefined) options.tls = tls;
  const auth = await authFromFlags(flags, io);
  if (auth !== undefined) options.auth = auth;
  return { endpoints, options };
}

function tlsFromFlags(flags: FlagSet): TlsOptions | undefined {
  const files: Record<'cert' | 'key' | 'cacert', string> = { cert: '', key: '', cacert: '' };
  for (const name of ['cert', 'key', 'cacert'] as const) {
    files[name] = flags.string(name);
    if (files[name] === '' && flags.changed(name)) {
      throw new CliExit(ExitCode.BAD_ARGS, `empty string is passed to --${name} option`);
    }
  }
  const read = (path: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new CliExit(
        ExitCode.BAD_ARGS,
        `open ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : String(err)}`,
      );
    }
  };
  let tls: TlsOptions | undefined;
  if (files.cert !== '' || files.key !== '' || files.cacert !== '') {
    tls = {};
    if (files.cert !== '') tls.cert = read(files.cert);
    if (files.key !== '') tls.key = read(files.key);
    if (files.cacert !== '') tls.ca = read(files.cacert);
  }
  if (tls === undefined && !flags.bool('insecure-transport')) tls = {};
  if (tls !== undefined && flags.bool('insecure-skip-tls-verify')) tls.insecureSkipVerify = true;
  return tls;
}

async function authFromFlags(flags: FlagSet, io: CliIo): Promise<{ username: string; password: string } | undefined> {
  const user = flags.string('user');
  const password = flags.string('password');
  if (user === '') return undefined;
  if (password !== '') return { username: user, password };
  const colon = user.indexOf(':');
  if (colon >= 0) return { username: user.slice(0, colon), password: user.slice(colon + 1) };
  io.stdout.write('Password: ');
  const line = (await io.stdin.readLine()) ?? '';
  io.stdout.write('\n');
  return { username: user, password: line.replace(/\r?\n$/, '') };
}

/** --debug: every inherited flag as the variable that would set it. */
export function printDebug(command: Command, flags: FlagSet, io: CliIo): void {
  const names = new Set(command.inheritedFlags().map((f) => f.name));
  for (const { name, text } of flags.entries(names)) io.stderr.write(`${flagToEnv(name)}=${text}\n`);
}

export function newClient(config: ClientConfig, endpoints: readonly string[] = config.endpoints): Client {
  try {
    return new Client({ ...config.options, endpoints: [...endpoints] });
  } catch (err) {
    throw new CliExit(ExitCode.BAD_CONNECTION, err instanceof Error ? err.message : String(err));
  }
}
