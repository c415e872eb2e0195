/**
 * `service register|list|watch` (etcdctl-ts only): service registration and discovery on the
 * client's registry. An instance is the key `<prefix>/<service>/<instance-id>` bound to a
 * kept-alive lease, so it disappears when its registrar dies.
 *
 *   etcdctl-ts service register api node-1 http://10.0.0.1:8080 --ttl 10
 *   etcdctl-ts service list api            (simple: id and value per line; -w json)
 *   etcdctl-ts service watch api           (ADDED / UPDATED / REMOVED lines as it changes)
 */
import type { Instance } from '../../client/index.ts';
import { CliExit, type CommandContext, type CommandSpec, ExitCode, flag } from '../command.ts';
import { FlagType } from '../flags.ts';
import { goJsonString, hex016 } from '../go-format.ts';
import { orExit } from './util.ts';

const PREFIX_FLAG = flag('prefix', FlagType.STRING, '/services', 'key prefix of the service registry');

function format(ctx: CommandContext): 'simple' | 'json' {
  ctx.printer();
  const f = ctx.flags.string('write-out');
  if (f !== 'simple' && f !== 'json') throw new CliExit(ExitCode.BAD_FEATURE, `${f} not supported as output format`);
  return f;
}

function instanceJson(i: Instance): string {
  return `{"id":${goJsonString(i.id)},"key":${goJsonString(i.key)},"value":${goJsonString(i.value)},"lease":${i.lease},"mod_revision":${i.modRevision}}`;
}

function untilInterrupted(ctx: CommandContext): Promise<void> {
  return new Promise((resolve) => {
    if (ctx.interrupted.aborted) resolve();
    ctx.interrupted.addEventListener('abort', () => resolve(), { once: true });
  });
}

const register: CommandSpec = {
  handlesInterrupt: true,
  use: 'register <service> <instance-id> <value>',
  short: 'Registers an instance of a service until interrupted',
  flags: [PREFIX_FLAG, flag('ttl', FlagType.INT64, '10', 'seconds the instance outlives its registrar')],
  run: async (ctx) => {
    if (ctx.args.length !== 3) {
      throw new CliExit(ExitCode.BAD_ARGS, 'service register needs a service, an instance id and a value');
    }
    const [service, id, value] = ctx.args as [string, string, string];
    const ttl = Number(ctx.flags.int('ttl'));
    const out = format(ctx);
    const client = await ctx.client();
    const registration = await orExit(async () => {
      try {
        return await client.register(service, id, value, { ttl, prefix: ctx.flags.string('prefix') });
      } catch (err) {
        if (err instanceof TypeError || err instanceof RangeError) throw new CliExit(ExitCode.BAD_ARGS, err.message);
        throw err;
      }
    });
    const announce = (lease: bigint) => {
      if (out === 'json') {
        ctx.io.stdout.write(`{"registered":${goJsonString(registration.key)},"lease":${lease}}\n`);
      } else {
        ctx.io.stdout.write(`registered ${registration.key} with lease ${hex016(lease)}\n`);
      }
    };
    announce(registration.leaseId ?? 0n);
    registration.on('registered', announce);
    registration.on('lost', () => {
      if (out === 'simple') ctx.io.stderr.write(`registration ${registration.key} lost its lease; registering again\n`);
    });
    await untilInterrupted(ctx);
    await orExit(() => registration.close());
    if (out === 'simple') ctx.io.stdout.write(`deregistered ${registration.key}\n`);
  },
};

const list: CommandSpec = {
  use: 'list <service>',
  short: 'Lists the registered instances of a service',
  flags: [PREFIX_FLAG],
  run: async (ctx) => {
    if (ctx.args.length !== 1) throw new CliExit(ExitCode.BAD_ARGS, 'service list needs a service name');
    const out = format(ctx);
    const client = await ctx.client();
    const discovery = await orExit(() => client.discover(ctx.args[0]!, { prefix: ctx.flags.string('prefix') }));
    const instances = discovery.instances();
    await discovery.close();
    if (out === 'json') {
      ctx.io.stdout.write(
        `{"service":${goJsonString(ctx.args[0]!)},"instances":[${instances.map(instanceJson).join(',')}]}\n`,
      );
      return;
    }
    for (const i of instances) {
      ctx.io.stdout.write(`${i.id}\n`);
      ctx.io.stdout.write(i.value);
      ctx.io.stdout.write('\n');
    }
  },
};

const watch: CommandSpec = {
  handlesInterrupt: true,
  use: 'watch <service>',
  short: 'Prints the instances of a service, then every change, until interrupted',
  flags: [PREFIX_FLAG],
  run: async (ctx) => {
    if (ctx.args.length !== 1) throw new CliExit(ExitCode.BAD_ARGS, 'service watch needs a service name');
    const out = format(ctx);
    const client = await ctx.client();
    const print = (event: 'ADDED' | 'UPDATED' | 'REMOVED', i: Instance) => {
      if (out === 'json') {
        ctx.io.stdout.write(`{"event":"${event}","instance":${instanceJson(i)}}\n`);
      } else {
        ctx.io.stdout.write(`${event} ${i.id} `);
        ctx.io.stdout.write(i.value);
        ctx.io.stdout.write('\n');
      }
    };
    const discovery = await orExit(() => client.discover(ctx.args[0]!, { prefix: ctx.flags.string('prefix') }));
    for (const i of discovery.instances()) print('ADDED', i);
    discovery.on('added', (i: Instance) => print('ADDED', i));
    discovery.on('updated', (i: Instance) => print('UPDATED', i));
    discovery.on('removed', (i: Instance) => print('REMOVED', i));
    const failed = new Promise<string>((resolve) => discovery.on('error', (err: Error) => resolve(err.message)));
    const outcome = await Promise.race([untilInterrupted(ctx).then(() => undefined), failed]);
    await discovery.close();
    if (outcome !== undefined) throw new CliExit(ExitCode.ERROR, outcome);
  },
};

export const serviceCommand: CommandSpec = {
  use: 'service <subcommand>',
  short: 'Service registration and discovery (etcdctl-ts)',
  subcommands: [register, list, watch],
};
