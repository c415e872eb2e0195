/**
 * `watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]`
 * (etcdctl's watch_command.go), with its interactive mode (`watch` and `progress` lines on
 * standard input), ETCDCTL_WATCH_KEY / ETCDCTL_WATCH_RANGE_END, and the command run per event.
 */
import { type Client, CompactedError, type EtcdError, type WatchBatch, type WatchOptions } from '../../client/index.ts';
import { CliExit, type CommandContext, type CommandSpec, ExitCode, flag } from '../command.ts';
import { FlagError, FlagSet, FlagType } from '../flags.ts';
import { goQuote } from '../go-format.ts';
import type { Printer, WatchView } from '../printers/index.ts';
import { quoteList, runCommand } from './exec.ts';
import { argify } from './txn.ts';

const WATCH_FLAGS = [
  flag('interactive', FlagType.BOOL, 'false', 'Interactive mode', 'i'),
  flag('prefix', FlagType.BOOL, 'false', 'Watch on a prefix if prefix is set'),
  flag('rev', FlagType.INT64, '0', 'Revision to start watching'),
  flag('prev-kv', FlagType.BOOL, 'false', 'get the previous key-value pair before the event happens'),
];

const BAD_ARGS_NUM = 'bad number of arguments';
const BAD_ARGS_CONFLICT_ENV = 'bad number of arguments (found conflicting environment key)';
const BAD_ARGS_SEPARATOR = 'bad number of arguments (found separator --, but no commands)';
const BAD_ARGS_INTERACTIVE = "args[0] must be 'watch' for interactive calls";

interface WatchSettings {
  prefix: boolean;
  rev: bigint;
  prevKv: boolean;
}

class WatchArgsError extends Error {}

/** etcdctl's parseWatchArgs, non-interactive: the watch arguments and the command to run. */
export function parseWatchArgs(
  osArgs: readonly string[],
  commandArgs: readonly string[],
  envKey: string,
  envRange: string,
): { watchArgs: string[]; execArgs: string[] } {
  let rawArgs = [...osArgs];
  const watchArgs = [...commandArgs];
  const at = rawArgs.indexOf('watch');
  if (at >= 0) rawArgs = rawArgs.slice(at + 1);
  let execIdx = rawArgs.indexOf('--');
  const execExist = execIdx >= 0;
  if (!execExist) execIdx = rawArgs.length - 1;
  if (execExist && execIdx === rawArgs.length - 1) throw new WatchArgsError(BAD_ARGS_SEPARATOR);
  if (!execExist && rawArgs.length < 1 && envKey === '') throw new WatchArgsError(BAD_ARGS_NUM);
  if (execExist && envKey !== '') {
    let ridx = rawArgs.length - 1;
    for (let widx = watchArgs.length - 1; widx >= 0; widx--) {
      if (watchArgs[widx] === rawArgs[ridx]) {
        ridx--;
        continue;
      }
      if (ridx === execIdx) throw new WatchArgsError(BAD_ARGS_CONFLICT_ENV);
    }
  }
  if (!execExist && watchArgs.length > 0 && envKey !== '') throw new WatchArgsError(BAD_ARGS_CONFLICT_ENV);
  return finishWatchArgs(rawArgs, watchArgs, envKey, envRange);
}

function finishWatchArgs(
  argsWithSep: readonly string[],
  parsedArgs: string[],
  envKey: string,
  envRange: string,
): { watchArgs: string[]; execArgs: string[] } {
  let watchArgs = parsedArgs;
  const idx = argsWithSep.indexOf('--');
  const execArgs = idx >= 0 ? argsWithSep.slice(idx + 1) : [];
  if (envKey !== '') watchArgs = [envKey, ...(envRange !== '' ? [envRange] : []), ...watchArgs];
  if (idx < 0) return { watchArgs, execArgs };
  let endIdx = watchArgs.length - 1;
  for (; endIdx >= 0; endIdx--) if (watchArgs[endIdx] === argsWithSep[idx + 1]) break;
  return { watchArgs: watchArgs.slice(0, Math.max(0, endIdx)), execArgs };
}

/** etcdctl's parseWatchArgs for one interactive line (its words, starting with "watch"). */
function parseInteractiveWatchArgs(
  words: readonly string[],
  envKey: string,
  envRange: string,
): { watchArgs: string[]; execArgs: string[]; settings: WatchSettings } {
  if (words[0] !== 'watch') throw new WatchArgsError(BAD_ARGS_INTERACTIVE);
  const watchArgs = words.slice(1);
  const execIdx = watchArgs.indexOf('--');
  const execExist = execIdx >= 0;
  if (execExist && execIdx === watchArgs.length - 1) throw new WatchArgsError(BAD_ARGS_SEPARATOR);
  const flags = new FlagSet(WATCH_FLAGS);
  let positional: string[];
  try {
    // pflag leaves "--" out of the arguments but keeps what follows.
    positional = flags.parse(watchArgs).positional;
  } catch (err) {
    throw new WatchArgsError(err instanceof Error ? err.message : String(err));
  }
  if (!execExist && envKey === '' && positional.length < 1) throw new WatchArgsError(BAD_ARGS_NUM);
  if (!execExist && positional.length > 0 && envKey !== '') throw new WatchArgsError(BAD_ARGS_CONFLICT_ENV);
  const settings = { prefix: flags.bool('prefix'), rev: flags.int('rev'), prevKv: flags.bool('prev-kv') };
  return { ...finishWatchArgs(watchArgs, positional, envKey, envRange), settings };
}

/** etcdctl's getWatchChan: the watch options of the arguments. */
function watchOptions(args: readonly string[], settings: WatchSettings): { key: string; options: WatchOptions } {
  if (args.length < 1) throw new WatchArgsError(BAD_ARGS_NUM);
  const options: WatchOptions = { startRevision: settings.rev, prevKv: settings.prevKv };
  if (args.length === 2) {
    if (settings.prefix) throw new WatchArgsError('`range_end` and `--prefix` are mutually exclusive');
    options.end = args[1]!;
  }
  if (settings.prefix) options.prefix = true;
  return { key: args[0]!, options };
}

function view(batch: WatchBatch): WatchView {
  return {
    header: batch.header,
    events: batch.events.map((e) => ({ type: e.type === 'delete' ? 1 : 0, kv: e.kv, prevKv: e.prevKv })),
    compactRevision: 0n,
    canceled: false,
    created: false,
  };
}

/**
 * Prints a watch's batches (running the command per event) until the server cancels it;
 * resolves with the reason it ended.
 */
function printWatch(
  ctx: CommandContext,
  client: Client,
  printer: Printer,
  key: string,
  options: WatchOptions,
  execArgs: readonly string[],
): Promise<'canceled' | 'exec-failed'> {
  return new Promise((resolve) => {
    let chain = Promise.resolve();
    const watcher = client.watch(key, { ...options, signal: ctx.interrupted }, (batch) => {
      chain = chain.then(async () => {
        if (batch.progressNotify) ctx.io.stdout.write(`progress notify: ${batch.header.revision}\n`);
        printer.watch(view(batch));
        if (execArgs.length === 0) return;
        for (const e of batch.events) {
          const env = {
            ETCD_WATCH_REVISION: String(batch.header.revision),
            ETCD_WATCH_EVENT_TYPE: goQuote(e.type === 'delete' ? 'DELETE' : 'PUT'),
            ETCD_WATCH_KEY: goQuote(e.kv.key),
            ETCD_WATCH_VALUE: goQuote(e.kv.value),
          };
          const failure = await runCommand(execArgs, env, ctx.io);
          if (failure !== undefined) {
            ctx.io.stderr.write(`command ${quoteList(execArgs)} error (${failure})\n`);
            await watcher.close();
            resolve('exec-failed');
            return;
          }
        }
      });
    });
    watcher.on('error', (err: EtcdError) => {
      chain = chain.then(() => {
        ctx.io.stderr.write(`watch was canceled (${err.message})\n`);
        const compactRevision = err instanceof CompactedError ? err.compactRevision : 0n;
        const empty = { clusterId: 0n, memberId: 0n, revision: 0n, raftTerm: 0n };
        printer.watch({ header: empty, events: [], compactRevision, canceled: true, created: false });
      });
    });
    watcher.on('close', () => {
      void chain.then(() => resolve('canceled'));
    });
  });
}

async function interactive(ctx: CommandContext, envKey: string, envRange: string): Promise<void> {
  const client = await ctx.client();
  const printer = ctx.printer();
  const running: Promise<unknown>[] = [];
  for (;;) {
    const raw = await ctx.io.stdin.readLine();
    if (raw === undefined || !raw.endsWith('\n')) {
      throw new CliExit(ExitCode.INVALID_INPUT, 'Error reading watch request line: EOF');
    }
    const line = raw.replace(/\n$/, '');
    const words = argify(line);
    if (words.length < 1) {
      ctx.io.stderr.write(`Invalid command: ${line} (watch and progress supported)\n`);
      continue;
    }
    if (words[0] === 'watch') {
      if (words.length < 2 && envKey === '') {
        ctx.io.stderr.write(`Invalid command ${line} (command type or key is not provided)\n`);
        continue;
      }
      let parsed: ReturnType<typeof parseInteractiveWatchArgs>;
      try {
        parsed = parseInteractiveWatchArgs(words, envKey, envRange);
      } catch (err) {
        throw new CliExit(ExitCode.BAD_ARGS, (err as Error).message);
      }
      let target: ReturnType<typeof watchOptions>;
      try {
        target = watchOptions(parsed.watchArgs, parsed.settings);
      } catch (err) {
        ctx.io.stderr.write(`Invalid command ${line} (${(err as Error).message})\n`);
        continue;
      }
      running.push(printWatch(ctx, client, printer, target.key, target.options, parsed.execArgs));
    } else if (words[0] === 'progress') {
      client.requestWatchProgress();
    } else {
      ctx.io.stderr.write(`Invalid command ${line} (only support watch)\n`);
    }
  }
}

export const watchCommand: CommandSpec = {
  handlesInterrupt: true,
  use: 'watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]',
  short: 'Watches events stream on keys or prefixes',
  flags: WATCH_FLAGS,
  run: async (ctx) => {
    const envKey = ctx.io.env.ETCDCTL_WATCH_KEY ?? '';
    const envRange = ctx.io.env.ETCDCTL_WATCH_RANGE_END ?? '';
    if (envKey === '' && envRange !== '') {
      throw new CliExit(
        ExitCode.BAD_ARGS,
        `ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END=${goQuote(envRange)}`,
      );
    }
    if (ctx.flags.bool('interactive')) return interactive(ctx, envKey, envRange);
    let parsed: { watchArgs: string[]; execArgs: string[] };
    try {
      parsed = parseWatchArgs(ctx.rawArgs, ctx.args, envKey, envRange);
    } catch (err) {
      if (err instanceof WatchArgsError || err instanceof FlagError) throw new CliExit(ExitCode.BAD_ARGS, err.message);
      throw err;
    }
    const client = await ctx.client();
    const printer = ctx.printer();
    let target: ReturnType<typeof watchOptions>;
    try {
      target = watchOptions(parsed.watchArgs, {
        prefix: ctx.flags.bool('prefix'),
        rev: ctx.flags.int('rev'),
        prevKv: ctx.flags.bool('prev-kv'),
      });
    } catch (err) {
      throw new CliExit(ExitCode.BAD_ARGS, (err as Error).message);
    }
    const how = await printWatch(ctx, client, printer, target.key, target.options, parsed.execArgs);
    if (how === 'exec-failed') throw new CliExit(ExitCode.ERROR);
    if (ctx.interrupted.aborted) throw new CliExit(130);
    throw new CliExit(ExitCode.INTERRUPTED, 'watch is canceled by the server');
  },
};
