/**
 * etcdctl-ts: etcdctl v3's commands, flags, ETCDCTL_* variables, output formats and exit codes,
 * on the etcd-ts client. `run` takes the command line and the process's streams and returns
 * the exit code, so the CLI runs in-process as well as from bin/etcdctl-ts.ts.
 */
import type { Client } from '../client/index.ts';
import { VERSION } from '../version.ts';
import { CLI_NAME, CliExit, Command, type CommandContext, type CommandSpec, ExitCode } from './command.ts';
import { alarmCommand } from './commands/alarm.ts';
import { authCommand } from './commands/auth.ts';
import { compactionCommand } from './commands/compaction.ts';
import { defragCommand } from './commands/defrag.ts';
import { delCommand } from './commands/del.ts';
import { electCommand } from './commands/elect.ts';
import { endpointCommand } from './commands/endpoint.ts';
import { getCommand } from './commands/get.ts';
import { leaseCommand } from './commands/lease.ts';
import { lockCommand } from './commands/lock.ts';
import { memberCommand } from './commands/member.ts';
import { moveLeaderCommand } from './commands/move-leader.ts';
import { putCommand } from './commands/put.ts';
import { roleCommand } from './commands/role.ts';
import { serviceCommand } from './commands/service.ts';
import { snapshotCommand } from './commands/snapshot.ts';
import { txnCommand } from './commands/txn.ts';
import { userCommand } from './commands/user.ts';
import { versionCommand } from './commands/version.ts';
import { watchCommand } from './commands/watch.ts';
import { FlagError, FlagSet } from './flags.ts';
import {
  applyEnv,
  type ClientConfig,
  clientConfig,
  GLOBAL_FLAGS,
  newClient,
  printDebug,
  printerFromFlags,
} from './global.ts';
import type { CliIo } from './io.ts';
import type { Printer } from './printers/index.ts';

export const API_VERSION = VERSION.server.split('.').slice(0, 2).join('.');

/** The exit code of a process ended by SIGINT. */
const EXIT_INTERRUPTED = 130;

/** Variables a command reads itself besides the flags' (not reported as unrecognized). */
const COMMAND_ENV: Readonly<Record<string, readonly string[]>> = { watch: ['watch-key', 'watch-range-end'] };

function helpCommand(root: () => Command): CommandSpec {
  return {
    use: 'help [command]',
    short: 'Help about any command',
    run: async (ctx) => {
      let cmd = root();
      for (const word of ctx.args) {
        const next = cmd.child(word);
        if (next === undefined) {
          ctx.io.stdout.write(`Unknown help topic ${JSON.stringify(ctx.args)}\n`);
          ctx.io.stdout.write(root().usage(VERSION.server, API_VERSION));
          return;
        }
        cmd = next;
      }
      ctx.io.stdout.write(cmd.usage(VERSION.server, API_VERSION));
    },
  };
}

export function rootCommand(): Command {
  let root: Command | undefined;
  const spec: CommandSpec = {
    use: CLI_NAME,
    short: 'A simple command line client for etcd3.',
    persistentFlags: GLOBAL_FLAGS,
    subcommands: [
      getCommand,
      putCommand,
      delCommand,
      txnCommand,
      compactionCommand,
      alarmCommand,
      defragCommand,
      endpointCommand,
      moveLeaderCommand,
      watchCommand,
      versionCommand,
      leaseCommand,
      memberCommand,
      snapshotCommand,
      lockCommand,
      electCommand,
      serviceCommand,
      authCommand,
      userCommand,
      roleCommand,
      helpCommand(() => root!),
    ],
  };
  root = new Command(spec);
  return root;
}

/** cobra's stripFlags: the words of `args` that are not flags or flag values. */
function stripFlags(args: readonly string[], flags: FlagSet): string[] {
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const s = args[i]!;
    if (s === '--') break;
    const longWithValue = s.startsWith('--') && !s.includes('=') && !flags.isBool(s.slice(2));
    const shortWithValue =
      s.startsWith('-') && !s.includes('=') && s.length === 2 && !flags.isBoolShorthand(s.slice(1));
    if (longWithValue || shortWithValue) {
      if (args.length - i - 1 <= 1) break;
      i++;
      continue;
    }
    if (s !== '' && !s.startsWith('-')) words.push(s);
  }
  return words;
}

function withoutFirst(args: readonly string[], word: string): string[] {
  const i = args.indexOf(word);
  return i < 0 ? [...args] : [...args.slice(0, i), ...args.slice(i + 1)];
}

/** Levenshtein distance, case-insensitive (cobra's suggestions). */
function distance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  const d: number[][] = Array.from({ length: s.length + 1 }, (_, i) => [i, ...new Array(t.length).fill(0)]);
  for (let j = 1; j <= t.length; j++) d[0]![j] = j;
  for (let i = 1; i <= s.length; i++) {
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
    }
  }
  return d[s.length]![t.length]!;
}

function suggestions(root: Command, typed: string): string {
  const names = root.children
    .filter((c) => distance(typed, c.name) <= 2 || c.name.toLowerCase().startsWith(typed.toLowerCase()))
    .map((c) => c.name);
  return names.length === 0 ? '' : `\n\nDid you mean this?\n${names.map((n) => `\t${n}\n`).join('')}`;
}

async function orBadConnection(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    throw new CliExit(ExitCode.BAD_CONNECTION, err instanceof Error ? err.message : String(err));
  }
}

/** Runs etcdctl-ts with `argv` (the arguments after the program name); resolves to the exit code. */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const apiVersion = io.env.ETCDCTL_API;
  if (apiVersion !== undefined && apiVersion !== '' && apiVersion !== '3') {
    io.stderr.write(`unsupported API version ${apiVersion}\n`);
    return ExitCode.ERROR;
  }
  const env: Record<string, string | undefined> = { ...io.env };
  delete env.ETCDCTL_API;
  const cliIo: CliIo = { ...io, env };

  const root = rootCommand();
  let command = root;
  let rest: string[] = [...argv];
  for (;;) {
    const words = stripFlags(rest, new FlagSet(command.allFlags()));
    const next = words[0] === undefined ? undefined : command.child(words[0]);
    if (next === undefined) break;
    command = next;
    rest = withoutFirst(rest, words[0]!);
  }
  if (command === root) {
    const words = stripFlags(rest, new FlagSet(command.allFlags()));
    if (words.length > 0) {
      const message = `unknown command ${JSON.stringify(words[0])} for ${JSON.stringify(CLI_NAME)}${suggestions(root, words[0]!)}`;
      io.stderr.write(`Error: ${message}\nRun '${CLI_NAME} --help' for usage.\nError: ${message}\n`);
      return ExitCode.ERROR;
    }
  }

  const flags = new FlagSet(command.allFlags());
  let parsed: { positional: string[]; dashAt: number };
  try {
    parsed = flags.parse(rest);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    io.stderr.write(`Error: ${err.message}\n`);
    io.stdout.write(command.usage(VERSION.server, API_VERSION));
    io.stderr.write(`\nError: ${err.message}\n`);
    return ExitCode.ERROR;
  }
  if (flags.bool('help') || !command.runnable) {
    io.stdout.write(command.usage(VERSION.server, API_VERSION));
    return ExitCode.SUCCESS;
  }

  const clients: Client[] = [];
  let envApplied = false;
  let printer: Printer | undefined;
  let config: ClientConfig | undefined;
  let client: Client | undefined;
  const ensureEnv = () => {
    if (envApplied) return;
    envApplied = true;
    applyEnv(command, flags, cliIo, COMMAND_ENV[command.name] ?? []);
    if (flags.bool('debug')) printDebug(command, flags, cliIo);
  };
  const getConfig = async () => {
    ensureEnv();
    config ??= await clientConfig(flags, cliIo);
    printer ??= printerFromFlags(flags, cliIo);
    return config;
  };
  const ctx: CommandContext = {
    command,
    args: parsed.positional,
    dashAt: parsed.dashAt,
    rawArgs: argv,
    flags,
    io: cliIo,
    interrupted: io.interrupted,
    async client() {
      const c = await getConfig();
      if (client === undefined) {
        client = newClient(c);
        clients.push(client);
        // etcd's Go client authenticates when it connects: wrong credentials fail the client.
        const made = client;
        await orBadConnection(() => made.authenticateNow());
      }
      return client;
    },
    async clientFor(endpoints, options = {}) {
      const c = await getConfig();
      const { auth: _auth, ...withoutAuth } = c.options;
      const made = newClient(options.withAuth === false ? { ...c, options: withoutAuth } : c, endpoints);
      clients.push(made);
      await made.authenticateNow();
      return made;
    },
    endpoints() {
      ensureEnv();
      return flags.strings('endpoints').map((e) => e.trim());
    },
    printer() {
      ensureEnv();
      printer ??= printerFromFlags(flags, cliIo);
      return printer;
    },
    commandTimeoutMs() {
      ensureEnv();
      return Math.max(1, Number(flags.duration('command-timeout') / 1_000_000n));
    },
  };
  const runCommand = async (): Promise<number> => {
    await command.spec.run!(ctx);
    return ExitCode.SUCCESS;
  };
  try {
    if (command.spec.handlesInterrupt === true) return await runCommand();
    // Like a Go program without a handler: an interrupted command stops at once.
    let onAbort: (() => void) | undefined;
    const interrupted = new Promise<number>((resolve) => {
      onAbort = () => resolve(EXIT_INTERRUPTED);
      if (io.interrupted.aborted) onAbort();
      else io.interrupted.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([runCommand(), interrupted]);
    } finally {
      if (onAbort !== undefined) io.interrupted.removeEventListener('abort', onAbort);
    }
  } catch (err) {
    if (err instanceof CliExit) {
      if (!err.printed) io.stderr.write(`Error: ${err.message}\n`);
      return err.code;
    }
    io.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    return ExitCode.ERROR;
  } finally {
    for (const c of clients) c.close();
  }
}
