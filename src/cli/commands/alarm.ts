/** `alarm list|disarm` (etcdctl's alarm_command.go, with clientv3's AlarmList and AlarmDisarm). */
import {
  type AlarmMember,
  AlarmRequest_AlarmAction,
  type AlarmResponse,
  AlarmType,
  MaintenanceService,
} from '../../proto/index.ts';
import { CliExit, type CommandSpec, ExitCode } from '../command.ts';
import { orExit } from './util.ts';

const GET = AlarmRequest_AlarmAction.GET;
const DEACTIVATE = AlarmRequest_AlarmAction.DEACTIVATE;

const list: CommandSpec = {
  use: 'list',
  short: 'Lists all alarms',
  run: async (ctx) => {
    if (ctx.args.length !== 0) throw new CliExit(ExitCode.BAD_ARGS, 'alarm list command accepts no arguments');
    const client = await ctx.client();
    const request = { action: GET, memberID: 0n, alarm: AlarmType.NONE };
    const resp = await orExit(() => client.call(MaintenanceService.Alarm, request, { idempotent: true }));
    ctx.printer().alarm(resp);
  },
};

const disarm: CommandSpec = {
  use: 'disarm',
  short: 'Disarms all alarms',
  run: async (ctx) => {
    if (ctx.args.length !== 0) throw new CliExit(ExitCode.BAD_ARGS, 'alarm disarm command accepts no arguments');
    const client = await ctx.client();
    // clientv3's AlarmDisarm of no alarm in particular: list them all, then disarm each; the
    // answer gathers the alarms disarmed and has no header.
    const listed = await orExit(() =>
      client.call(MaintenanceService.Alarm, { action: GET, memberID: 0n, alarm: AlarmType.NONE }, { idempotent: true }),
    );
    const disarmed: AlarmMember[] = [];
    for (const a of listed.alarms) {
      const request = { action: DEACTIVATE, memberID: a.memberID, alarm: a.alarm };
      const resp = await orExit(() => client.call(MaintenanceService.Alarm, request, { idempotent: false }));
      disarmed.push(...resp.alarms);
    }
    const out: AlarmResponse = { header: undefined, alarms: disarmed };
    ctx.printer().alarm(out);
  },
};

export const alarmCommand: CommandSpec = {
  use: 'alarm <subcommand>',
  short: 'Alarm related commands',
  subcommands: [disarm, list],
};
