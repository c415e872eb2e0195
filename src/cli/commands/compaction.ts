/** `compaction [options] <revision>` (etcdctl's compaction_command.go). */
import { KVService } from '../../proto/index.ts';
import { CliExit, type CommandSpec, ExitCode, flag } from '../command.ts';
import { FlagType } from '../flags.ts';
import { orExit, parseIntBase } from './util.ts';

export const compactionCommand: CommandSpec = {
  use: 'compaction [options] <revision>',
  short: 'Compacts the event history in etcd',
  flags: [
    flag('physical', FlagType.BOOL, 'false', "'true' to wait for compaction to physically remove all old revisions"),
  ],
  run: async (ctx) => {
    if (ctx.args.length !== 1) throw new CliExit(ExitCode.BAD_ARGS, 'compaction command needs 1 argument');
    const rev = parseIntBase(ctx.args[0]!, 10);
    if ('error' in rev) throw new CliExit(ExitCode.ERROR, rev.error);
    const client = await ctx.client();
    const request = { revision: rev.value, physical: ctx.flags.bool('physical') };
    await orExit(() => client.call(KVService.Compact, request, { idempotent: false }));
    ctx.io.stdout.write(`compacted revision ${rev.value}\n`);
  },
};
