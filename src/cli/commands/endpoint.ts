/** `endpoint health|status|hashkv` (etcdctl's ep_command.go). */
import type { Client } from '../../client/index.ts';
import { PermissionDeniedError } from '../../client/index.ts';
import { ClusterService, KVService, MaintenanceService } from '../../proto/index.ts';
import { CliExit, type CommandContext, type CommandSpec, ExitCode, flag } from '../command.ts';
import { FlagType } from '../flags.ts';
import { formatDuration } from '../go-format.ts';
import type { EpHashKV, EpHealth, EpStatus } from '../printers/index.ts';

/** The endpoints to ask: --endpoints, or with --cluster every member's client URLs. */
async function endpointsFromCluster(ctx: CommandContext): Promise<string[]> {
  const endpoints = ctx.endpoints();
  if (!ctx.flags.bool('cluster')) return endpoints;
  // Like etcdctl: member list needs no authentication, so none is asked for.
  const client = await ctx.clientFor(endpoints, { withAuth: false });
  try {
    const r = await client.call(ClusterService.MemberList, { linearizable: false }, { idempotent: true });
    return r.members.flatMap((m) => m.clientURLs);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new CliExit(ExitCode.ERROR, `failed to fetch endpoints from etcd cluster member list: ${reason}`);
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const health: CommandSpec = {
  use: 'health',
  short: 'Checks the healthiness of endpoints specified in `--endpoints` flag',
  run: async (ctx) => {
    const printer = ctx.printer();
    const endpoints = await endpointsFromCluster(ctx);
    const results: EpHealth[] = [];
    await Promise.all(
      endpoints.map(async (ep) => {
        let client: Client;
        try {
          client = await ctx.clientFor([ep]);
        } catch (err) {
          if (err instanceof CliExit) throw err;
          results.push({ ep, health: false, took: '', error: message(err) });
          return;
        }
        const startNs = process.hrtime.bigint();
        let error = '';
        try {
          // Any key will do: an answer means the member reached consensus on the read.
          await client.call(
            KVService.Range,
            {
              key: Buffer.from('health'),
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
          );
        } catch (err) {
          // Permission denied is an answer too: the proposal went through consensus.
          if (!(err instanceof PermissionDeniedError)) error = message(err);
        }
        const took = formatDuration(process.hrtime.bigint() - startNs);
        results.push({ ep, health: error === '', took, error });
      }),
    );
    printer.endpointHealth(results);
    if (results.some((h) => h.error !== '')) throw new CliExit(ExitCode.ERROR, 'unhealthy cluster');
  },
};

const status: CommandSpec = {
  use: 'status',
  short: 'Prints out the status of endpoints specified in `--endpoints` flag',
  long: `When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are endpoint, ID, version, db size, is leader, is learner, raft term, raft index, raft applied index, errors.
`,
  run: async (ctx) => {
    await ctx.client();
    const list: EpStatus[] = [];
    let failed = false;
    for (const ep of await endpointsFromCluster(ctx)) {
      try {
        const client = await ctx.clientFor([ep]);
        list.push({ ep, resp: await client.call(MaintenanceService.Status, {}, { idempotent: true }) });
      } catch (err) {
        failed = true;
        ctx.io.stderr.write(`Failed to get the status of endpoint ${ep} (${message(err)})\n`);
      }
    }
    ctx.printer().endpointStatus(list);
    if (failed) throw new CliExit(ExitCode.ERROR);
  },
};

const hashkv: CommandSpec = {
  use: 'hashkv',
  short: 'Prints the KV history hash for each endpoint in --endpoints',
  persistentFlags: [flag('rev', FlagType.INT64, '0', 'maximum revision to hash (default: all revisions)')],
  run: async (ctx) => {
    await ctx.client();
    const list: EpHashKV[] = [];
    let lastError: string | undefined;
    for (const ep of await endpointsFromCluster(ctx)) {
      try {
        const client = await ctx.clientFor([ep]);
        const resp = await client.call(
          MaintenanceService.HashKV,
          { revision: ctx.flags.int('rev') },
          { idempotent: true },
        );
        list.push({ ep, resp });
      } catch (err) {
        lastError = message(err);
        ctx.io.stderr.write(`Failed to get the hash of endpoint ${ep} (${lastError})\n`);
      }
    }
    ctx.printer().endpointHashKV(list);
    if (lastError !== undefined) throw new CliExit(ExitCode.ERROR, lastError);
  },
};

export const endpointCommand: CommandSpec = {
  use: 'endpoint <subcommand>',
  short: 'Endpoint related commands',
  persistentFlags: [flag('cluster', FlagType.BOOL, 'false', 'use all endpoints from the cluster member list')],
  subcommands: [health, status, hashkv],
};
