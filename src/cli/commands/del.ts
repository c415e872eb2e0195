/** `del [options] <key> [range_end]` (etcdctl's del_command.go). */
import { type DeleteRangeRequest, KVService } from '../../proto/index.ts';
import { CliExit, type CommandSpec, ExitCode, flag } from '../command.ts';
import { type FlagSet, FlagType } from '../flags.ts';
import { orExit, withRangeOptions } from './util.ts';

export const DEL_FLAGS = [
  flag('prefix', FlagType.BOOL, 'false', 'delete keys with matching prefix'),
  flag('prev-kv', FlagType.BOOL, 'false', 'return deleted key-value pairs'),
  flag(
    'from-key',
    FlagType.BOOL,
    'false',
    'delete keys that are greater than or equal to the given key using byte compare',
  ),
];

/** The DeleteRange request of `del`'s arguments and flags (etcdctl's getDelOp). */
export function delRequest(args: readonly string[], flags: FlagSet): DeleteRangeRequest {
  if (args.length === 0 || args.length > 2) {
    throw new CliExit(ExitCode.BAD_ARGS, 'del command needs one argument as key and an optional argument as range_end');
  }
  const prefix = flags.bool('prefix');
  const fromKey = flags.bool('from-key');
  if (prefix && fromKey) {
    throw new CliExit(ExitCode.BAD_ARGS, '`--prefix` and `--from-key` cannot be set at the same time, choose one');
  }
  let key: Buffer = Buffer.from(args[0]!);
  let rangeEnd: Buffer = Buffer.alloc(0);
  if (args.length > 1) {
    if (prefix || fromKey) {
      throw new CliExit(
        ExitCode.BAD_ARGS,
        'too many arguments, only accept one argument when `--prefix` or `--from-key` is set',
      );
    }
    rangeEnd = Buffer.from(args[1]!);
  }
  ({ key, rangeEnd } = withRangeOptions(key, rangeEnd, prefix, fromKey));
  return { key, rangeEnd, prevKv: flags.bool('prev-kv') };
}

export const delCommand: CommandSpec = {
  use: 'del [options] <key> [range_end]',
  short: 'Removes the specified key or range of keys [key, range_end)',
  flags: DEL_FLAGS,
  run: async (ctx) => {
    const request = delRequest(ctx.args, ctx.flags);
    const client = await ctx.client();
    const response = await orExit(() => client.call(KVService.DeleteRange, request, { idempotent: false }));
    ctx.printer().del(response);
  },
};
