/**
 * `defrag [--cluster] [--data-dir]` (etcdctl's defrag_command.go): defragments each member
 * named by --endpoints (or, with --cluster, every member of the cluster), or a data dir that no
 * member is using.
 */
import { join } from 'node:path';
import { ClusterService, MaintenanceService } from '../../proto/index.ts';
import { CliExit, type CommandContext, type CommandSpec, ExitCode, flag } from '../command.ts';
import { FlagType } from '../flags.ts';

/** --endpoints, or with --cluster the client URLs of every member. */
async function defragEndpoints(ctx: CommandContext): Promise<string[]> {
  const endpoints = ctx.endpoints();
  if (!ctx.flags.bool('cluster')) return endpoints;
  const client = await ctx.clientFor(endpoints, { withAuth: false });
  try {
    const r = await client.call(ClusterService.MemberList, { linearizable: false }, { idempotent: true });
    return r.members.flatMap((m) => m.clientURLs);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new CliExit(ExitCode.ERROR, `failed to fetch endpoints from etcd cluster member list: ${reason}`);
  }
}

/**
 * Defragments the backend of a data dir offline, holding the data dir's lock meanwhile. The
 * storage engine is loaded here, so that the CLI's other commands start without it.
 */
async function defragDataDir(dataDir: string): Promise<void> {
  const [{ openDataDir }, { Backend }] = await Promise.all([
    import('../../server/datadir.ts'),
    import('../../storage/backend/index.ts'),
  ]);
  const dir = await openDataDir(dataDir);
  try {
    const backend = Backend.open({ dir: join(dir.snapDir, 'db') });
    try {
      await backend.defragment();
    } finally {
      await backend.close();
    }
  } finally {
    await dir.close();
  }
}

export const defragCommand: CommandSpec = {
  use: 'defrag',
  short: 'Defragments the storage of the etcd members with given endpoints',
  flags: [
    flag('data-dir', FlagType.STRING, '', 'Optional. If present, defragments a data directory not in use by etcd.'),
  ],
  persistentFlags: [flag('cluster', FlagType.BOOL, 'false', 'use all endpoints from the cluster member list')],
  run: async (ctx) => {
    const dataDir = ctx.flags.string('data-dir');
    if (dataDir !== '') {
      try {
        await defragDataDir(dataDir);
      } catch (err) {
        ctx.io.stderr.write(
          `Failed to defragment etcd data[${dataDir}] (${err instanceof Error ? err.message : err})\n`,
        );
        throw new CliExit(ExitCode.ERROR);
      }
      return;
    }
    let failures = 0;
    const timeoutMs = ctx.commandTimeoutMs();
    for (const ep of await defragEndpoints(ctx)) {
      try {
        const client = await ctx.clientFor([ep]);
        await client.call(MaintenanceService.Defragment, {}, { idempotent: true, timeoutMs });
        ctx.io.stdout.write(`Finished defragmenting etcd member[${ep}]\n`);
      } catch (err) {
        if (err instanceof CliExit) throw err;
        ctx.io.stderr.write(`Failed to defragment etcd member[${ep}] (${err instanceof Error ? err.message : err})\n`);
        failures++;
      }
    }
    if (failures !== 0) throw new CliExit(ExitCode.ERROR);
  },
};
