/** `move-leader <transferee-member-id>` (etcdctl's move_leader_command.go). */
import { MaintenanceService, type StatusResponse } from '../../proto/index.ts';
import { CliExit, type CommandSpec, ExitCode } from '../command.ts';
import { goStringList } from '../go-format.ts';
import { orExit, parseUintBase } from './util.ts';

export const moveLeaderCommand: CommandSpec = {
  use: 'move-leader <transferee-member-id>',
  short: 'Transfers leadership to another etcd cluster member.',
  run: async (ctx) => {
    if (ctx.args.length !== 1) throw new CliExit(ExitCode.BAD_ARGS, 'move-leader command needs 1 argument');
    const target = parseUintBase(ctx.args[0]!, 16);
    if ('error' in target) throw new CliExit(ExitCode.BAD_ARGS, target.error);
    const endpoints = ctx.endpoints();
    await ctx.client();
    let leader: { endpoint: string; id: bigint } | undefined;
    for (const endpoint of endpoints) {
      const c = await ctx.clientFor([endpoint]);
      const status: StatusResponse = await orExit(() => c.call(MaintenanceService.Status, {}, { idempotent: true }));
      if (status.header?.memberId === status.leader) {
        leader = { endpoint, id: status.leader };
        break;
      }
    }
    if (leader === undefined)
      throw new CliExit(ExitCode.BAD_ARGS, `no leader endpoint given at ${goStringList(endpoints)}`);
    const leaderClient = await ctx.clientFor([leader.endpoint]);
    const response = await orExit(() =>
      leaderClient.call(MaintenanceService.MoveLeader, { targetID: target.value }, { idempotent: false }),
    );
    ctx.printer().moveLeader(leader.id, target.value, response);
  },
};
