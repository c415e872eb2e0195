/** `get [options] <key> [range_end]` (etcdctl's get_command.go). */
import { KVService, type RangeRequest, RangeRequest_SortOrder, RangeRequest_SortTarget } from '../../proto/index.ts';
import { CliExit, type CommandSpec, ExitCode, flag } from '../command.ts';
import { type FlagSet, FlagType } from '../flags.ts';
import { SimplePrinter } from '../printers/index.ts';
import { orExit, withRangeOptions } from './util.ts';

export const GET_FLAGS = [
  flag('consistency', FlagType.STRING, 'l', 'Linearizable(l) or Serializable(s)'),
  flag('order', FlagType.STRING, '', 'Order of results; ASCEND or DESCEND (ASCEND by default)'),
  flag('sort-by', FlagType.STRING, '', 'Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION'),
  flag('limit', FlagType.INT64, '0', 'Maximum number of results'),
  flag('prefix', FlagType.BOOL, 'false', 'Get keys with matching prefix'),
  flag(
    'from-key',
    FlagType.BOOL,
    'false',
    'Get keys that are greater than or equal to the given key using byte compare',
  ),
  flag('rev', FlagType.INT64, '0', 'Specify the kv revision'),
  flag('keys-only', FlagType.BOOL, 'false', 'Get only the keys'),
  flag('print-value-only', FlagType.BOOL, 'false', 'Only write values when using the "simple" output format'),
];

const SORT_ORDERS: Readonly<Record<string, RangeRequest_SortOrder>> = {
  ASCEND: RangeRequest_SortOrder.ASCEND,
  DESCEND: RangeRequest_SortOrder.DESCEND,
  '': RangeRequest_SortOrder.NONE,
};
const SORT_TARGETS: Readonly<Record<string, RangeRequest_SortTarget>> = {
  CREATE: RangeRequest_SortTarget.CREATE,
  KEY: RangeRequest_SortTarget.KEY,
  MODIFY: RangeRequest_SortTarget.MOD,
  VALUE: RangeRequest_SortTarget.VALUE,
  VERSION: RangeRequest_SortTarget.VERSION,
  '': RangeRequest_SortTarget.KEY,
};

/** The Range request of `get`'s arguments and flags (etcdctl's getGetOp), or the exit it causes. */
export function getRequest(args: readonly string[], flags: FlagSet): RangeRequest {
  if (args.length === 0) {
    throw new CliExit(ExitCode.BAD_ARGS, 'get command needs one argument as key and an optional argument as range_end');
  }
  const prefix = flags.bool('prefix');
  const fromKey = flags.bool('from-key');
  if (prefix && fromKey) {
    throw new CliExit(ExitCode.BAD_ARGS, '`--prefix` and `--from-key` cannot be set at the same time, choose one');
  }
  const consistency = flags.string('consistency');
  if (consistency !== 's' && consistency !== 'l') {
    throw new CliExit(ExitCode.BAD_FEATURE, `unknown consistency flag ${JSON.stringify(consistency)}`);
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
  const rev = flags.int('rev');
  const orderText = flags.string('order');
  let sortOrder = SORT_ORDERS[orderText.toUpperCase()];
  if (sortOrder === undefined) throw new CliExit(ExitCode.BAD_FEATURE, `bad sort order ${orderText}`);
  const targetText = flags.string('sort-by');
  const sortTarget = SORT_TARGETS[targetText.toUpperCase()];
  if (sortTarget === undefined) throw new CliExit(ExitCode.BAD_FEATURE, `bad sort target ${targetText}`);
  // clientv3.WithSort: ascending by key is the server's own order.
  if (sortTarget === RangeRequest_SortTarget.KEY && sortOrder === RangeRequest_SortOrder.ASCEND) {
    sortOrder = RangeRequest_SortOrder.NONE;
  }
  ({ key, rangeEnd } = withRangeOptions(key, rangeEnd, prefix, fromKey));
  return {
    key,
    rangeEnd,
    limit: flags.int('limit'),
    revision: rev > 0n ? rev : 0n,
    sortOrder,
    sortTarget,
    serializable: consistency === 's',
    keysOnly: flags.bool('keys-only'),
    countOnly: false,
    minModRevision: 0n,
    maxModRevision: 0n,
    minCreateRevision: 0n,
    maxCreateRevision: 0n,
  };
}

export const getCommand: CommandSpec = {
  use: 'get [options] <key> [range_end]',
  short: 'Gets the key or a range of keys',
  flags: GET_FLAGS,
  run: async (ctx) => {
    const request = getRequest(ctx.args, ctx.flags);
    const client = await ctx.client();
    const response = await orExit(() => client.call(KVService.Range, request, { idempotent: true }));
    const printer = ctx.printer();
    if (ctx.flags.bool('print-value-only')) {
      if (!(printer instanceof SimplePrinter)) {
        throw new CliExit(ExitCode.BAD_ARGS, 'print-value-only is only for `--write-out=simple`');
      }
      printer.valueOnly = true;
    }
    printer.get(response);
  },
};
