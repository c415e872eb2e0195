/**
 * `lock <lockname> [exec-command arg1 arg2 ...]` (etcdctl's lock_command.go): takes the lock
 * (etcd's recipe, so it excludes `etcdctl lock` holders too), prints its key, and holds it until
 * interrupted; with a command, runs it while holding the lock (ETCD_LOCK_KEY, ETCD_LOCK_REV
 * in its environment) and releases it after.
 */
import { KVService } from '../../proto/index.ts';
import { CliExit, type CommandSpec, ExitCode, flag } from '../command.ts';
import { FlagType } from '../flags.ts';
import { runCommand } from './exec.ts';
import { orExit } from './util.ts';

export const lockCommand: CommandSpec = {
  handlesInterrupt: true,
  use: 'lock <lockname> [exec-command arg1 arg2 ...]',
  short: 'Acquires a named lock',
  flags: [flag('ttl', FlagType.INT, '10', 'timeout for session')],
  run: async (ctx) => {
    if (ctx.args.length === 0) {
      throw new CliExit(ExitCode.BAD_ARGS, 'lock takes a lock name argument and an optional command to execute');
    }
    const client = await ctx.client();
    const [name, ...command] = ctx.args;
    const lock = await orExit(() => client.lock(name!, { ttl: Number(ctx.flags.int('ttl')), signal: ctx.interrupted }));
    if (command.length > 0) {
      const env = { ETCD_LOCK_KEY: lock.key.toString(), ETCD_LOCK_REV: String(lock.header.revision) };
      const failure = await runCommand(command, env, ctx.io);
      await orExit(() => lock.release());
      if (failure !== undefined) throw new CliExit(ExitCode.ERROR, failure);
      return;
    }
    const held = await orExit(() =>
      client.call(
        KVService.Range,
        {
          key: lock.key,
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
    if (held.kvs.length === 0) throw new CliExit(ExitCode.ERROR, 'lock lost on init');
    ctx.printer().get(held);
    const outcome = await Promise.race([
      new Promise<'interrupted'>((resolve) => {
        if (ctx.interrupted.aborted) resolve('interrupted');
        ctx.interrupted.addEventListener('abort', () => resolve('interrupted'), { once: true });
      }),
      lock.whenLost().then(() => 'lost' as const),
    ]);
    if (outcome === 'lost') throw new CliExit(ExitCode.ERROR, 'session expired');
    await orExit(() => lock.release());
  },
};
