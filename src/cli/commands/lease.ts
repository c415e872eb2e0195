/** `lease grant|revoke|timetolive|list|keep-alive` (etcdctl's lease_command.go). */
import { sleep } from '../../client/core.ts';
import type { Client } from '../../client/index.ts';
import { type LeaseKeepAliveResponse, LeaseService } from '../../proto/index.ts';
import { CliExit, type CommandContext, type CommandSpec, ExitCode, flag } from '../command.ts';
import { FlagType } from '../flags.ts';
import { hex016 } from '../go-format.ts';
import { SimplePrinter } from '../printers/index.ts';
import { orExit, parseIntBase } from './util.ts';

/** The lease id argument in hex (etcdctl's leaseFromArgs). */
function leaseFromArg(arg: string): bigint {
  const id = parseIntBase(arg, 16);
  if ('error' in id) throw new CliExit(ExitCode.BAD_ARGS, `bad lease ID arg (${id.error}), expecting ID in Hex`);
  return id.value;
}

const grant: CommandSpec = {
  use: 'grant <ttl>',
  short: 'Creates leases',
  run: async (ctx) => {
    if (ctx.args.length !== 1) throw new CliExit(ExitCode.BAD_ARGS, 'lease grant command needs TTL argument');
    const ttl = parseIntBase(ctx.args[0]!, 10);
    if ('error' in ttl) throw new CliExit(ExitCode.BAD_ARGS, `bad TTL (${ttl.error})`);
    const client = await ctx.client();
    const response = await orExit(
      () => client.call(LeaseService.LeaseGrant, { TTL: ttl.value, ID: 0n }, { idempotent: false }),
      ExitCode.ERROR,
      (m) => `failed to grant lease (${m})`,
    );
    ctx.printer().grant(response);
  },
};

const revoke: CommandSpec = {
  use: 'revoke <leaseID>',
  short: 'Revokes leases',
  run: async (ctx) => {
    if (ctx.args.length !== 1) throw new CliExit(ExitCode.BAD_ARGS, 'lease revoke command needs 1 argument');
    const id = leaseFromArg(ctx.args[0]!);
    const client = await ctx.client();
    const response = await orExit(
      () => client.call(LeaseService.LeaseRevoke, { ID: id }, { idempotent: false }),
      ExitCode.ERROR,
      (m) => `failed to revoke lease (${m})`,
    );
    ctx.printer().revoke(id, response);
  },
};

const timeToLive: CommandSpec = {
  use: 'timetolive <leaseID> [options]',
  short: 'Get lease information',
  flags: [flag('keys', FlagType.BOOL, 'false', 'Get keys attached to this lease')],
  run: async (ctx) => {
    if (ctx.args.length !== 1) {
      throw new CliExit(ExitCode.BAD_ARGS, 'lease timetolive command needs lease ID as argument');
    }
    const keys = ctx.flags.bool('keys');
    const id = leaseFromArg(ctx.args[0]!);
    const client = await ctx.client();
    const response = await orExit(
      () => client.call(LeaseService.LeaseTimeToLive, { ID: id, keys }, { idempotent: true }),
      ExitCode.BAD_CONNECTION,
    );
    ctx.printer().timeToLive(response, keys);
  },
};

const list: CommandSpec = {
  use: 'list',
  short: 'List all active leases',
  run: async (ctx) => {
    const client = await ctx.client();
    const response = await orExit(
      () => client.call(LeaseService.LeaseLeases, {}, { idempotent: true }),
      ExitCode.BAD_CONNECTION,
    );
    ctx.printer().leases(response);
  },
};

/** Minimum time between two renewals of the same lease. */
const RENEW_INTERVAL_MS_MIN = 500;
const RECONNECT_DELAY_MS = 200;

/**
 * Renews lease `id` every third of its TTL and prints each answer, until the lease is gone
 * (answer TTL 0) or the process is interrupted; the keep-alive stream is reopened if it breaks.
 */
async function keepAliveLoop(ctx: CommandContext, client: Client, id: bigint): Promise<'gone' | 'interrupted'> {
  const printer = ctx.printer();
  const signal = ctx.interrupted;
  while (!signal.aborted) {
    const outcome = await new Promise<'gone' | 'broken' | 'interrupted'>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      let stream: { write(r: { ID: bigint }): boolean; cancel(): void } | undefined;
      let done = false;
      const finish = (how: 'gone' | 'broken' | 'interrupted') => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(how);
        stream?.cancel();
      };
      const onAbort = () => finish('interrupted');
      signal.addEventListener('abort', onAbort, { once: true });
      client
        .openStream(LeaseService.LeaseKeepAlive, {
          onMessage: (r: LeaseKeepAliveResponse) => {
            if (r.TTL <= 0n) return finish('gone');
            printer.keepAlive(r);
            const everyMs = Math.max(RENEW_INTERVAL_MS_MIN, Math.floor((Number(r.TTL) * 1000) / 3));
            timer = setTimeout(() => stream?.write({ ID: id }), everyMs);
          },
          onClose: () => finish('broken'),
        })
        .then(
          (opened) => {
            stream = opened.stream;
            if (signal.aborted) finish('interrupted');
            else stream.write({ ID: id });
          },
          () => finish('broken'),
        );
    });
    if (outcome !== 'broken') return outcome;
    await sleep(RECONNECT_DELAY_MS, signal);
  }
  return 'interrupted';
}

const keepAlive: CommandSpec = {
  handlesInterrupt: true,
  use: 'keep-alive [options] <leaseID>',
  short: 'Keeps leases alive (renew)',
  flags: [
    flag('once', FlagType.BOOL, 'false', 'Resets the keep-alive time to its original value and exits immediately'),
  ],
  run: async (ctx) => {
    if (ctx.args.length !== 1) {
      throw new CliExit(ExitCode.BAD_ARGS, 'lease keep-alive command needs lease ID as argument');
    }
    const id = leaseFromArg(ctx.args[0]!);
    const client = await ctx.client();
    if (ctx.flags.bool('once')) {
      const response = await orExit(async () => {
        const r = await keepAliveOnce(client, id, ctx.commandTimeoutMs());
        if (r.TTL <= 0n) throw new Error('etcdserver: requested lease not found');
        return r;
      }, ExitCode.BAD_CONNECTION);
      ctx.printer().keepAlive(response);
      return;
    }
    const how = await keepAliveLoop(ctx, client, id);
    if (how === 'interrupted') throw new CliExit(130);
    if (ctx.printer() instanceof SimplePrinter) ctx.io.stdout.write(`lease ${hex016(id)} expired or revoked.\n`);
  },
};

/** One renewal over a keep-alive stream of its own. */
function keepAliveOnce(client: Client, id: bigint, timeoutMs: number): Promise<LeaseKeepAliveResponse> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const timer = setTimeout(() => reject(new Error('context deadline exceeded')), timeoutMs);
    client
      .openStream(LeaseService.LeaseKeepAlive, {
        onMessage: (r) => {
          answered = true;
          clearTimeout(timer);
          resolve(r);
        },
        onClose: (error) => {
          clearTimeout(timer);
          if (!answered) reject(new Error(error?.details ?? 'keep-alive stream closed without an answer'));
        },
      })
      .then(
        (opened) => {
          opened.stream.write({ ID: id });
          opened.stream.end();
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
  });
}

export const leaseCommand: CommandSpec = {
  use: 'lease <subcommand>',
  short: 'Lease related commands',
  subcommands: [grant, revoke, timeToLive, list, keepAlive],
};
