/**
 * `elect <election-name> [proposal]` (etcdctl's elect_command.go): campaigns with the proposal
 * and, once leader, prints the leader key and value and leads until interrupted; with `-l`,
 * prints the leader and every change of it. The same recipe as etcdctl, so both interoperate.
 */

import type { KeyValue } from '../../client/index.ts';
import { KVService, type RangeResponse } from '../../proto/index.ts';
import { CliExit, type CommandContext, type CommandSpec, ExitCode, flag } from '../command.ts';
import { FlagType } from '../flags.ts';
import { orExit } from './util.ts';

function asRange(kv: KeyValue, revision: bigint): RangeResponse {
  return {
    header: { clusterId: 0n, memberId: 0n, revision, raftTerm: 0n },
    kvs: [kv],
    more: false,
    count: 0n,
  };
}

function untilInterrupted(ctx: CommandContext): Promise<'interrupted'> {
  return new Promise((resolve) => {
    if (ctx.interrupted.aborted) resolve('interrupted');
    ctx.interrupted.addEventListener('abort', () => resolve('interrupted'), { once: true });
  });
}

async function observe(ctx: CommandContext, name: string): Promise<void> {
  const client = await ctx.client();
  const printer = ctx.printer();
  const election = client.election(name);
  try {
    for await (const leader of election.observe({ signal: ctx.interrupted })) {
      printer.get(asRange(leader, leader.modRevision));
    }
  } catch (err) {
    if (!ctx.interrupted.aborted) throw new CliExit(ExitCode.ERROR, err instanceof Error ? err.message : String(err));
  }
  if (!ctx.interrupted.aborted) throw new CliExit(ExitCode.ERROR, 'elect: observer lost');
}

async function campaign(ctx: CommandContext, name: string, proposal: string): Promise<void> {
  const client = await ctx.client();
  const lease = await orExit(() => client.lease(60));
  const election = client.election(name, { lease });
  try {
    await orExit(() => election.campaign(proposal, { signal: ctx.interrupted }));
    const key = election.key!;
    const response = await orExit(() =>
      client.call(
        KVService.Range,
        {
          key,
          rangeEnd: Buffer.alloc(0),
          limit: 0n,
          revision: 0n,
          sortOrder: 0,
          sortTarget: 0,
          serializable: false,
          keysOnly: false,
          countOnly: false,
          minModRevision: 0n,
          maxModRevision: 0n,
          minCreateRevision: 0n,
          maxCreateRevision: 0n,
        },
        { idempotent: true },
      ),
    );
    ctx.printer().get(response);
    const outcome = await Promise.race([untilInterrupted(ctx), lease.whenLost().then(() => 'lost' as const)]);
    if (outcome === 'lost') throw new CliExit(ExitCode.ERROR, 'elect: session expired');
    await orExit(() => election.resign());
  } finally {
    await lease.revoke().catch(() => {});
  }
}

export const electCommand: CommandSpec = {
  handlesInterrupt: true,
  use: 'elect <election-name> [proposal]',
  short: 'Observes and participates in leader election',
  flags: [flag('listen', FlagType.BOOL, 'false', 'observation mode', 'l')],
  run: async (ctx) => {
    if (ctx.args.length !== 1 && ctx.args.length !== 2) {
      throw new CliExit(ExitCode.BAD_ARGS, 'elect takes one election name argument and an optional proposal argument');
    }
    const listen = ctx.flags.bool('listen');
    if (ctx.args.length === 1) {
      if (!listen) throw new CliExit(ExitCode.BAD_ARGS, 'no proposal argument but -l not set');
      await observe(ctx, ctx.args[0]!);
    } else {
      if (listen) throw new CliExit(ExitCode.BAD_ARGS, 'proposal given but -l is set');
      await campaign(ctx, ctx.args[0]!, ctx.args[1]!);
    }
  },
};
