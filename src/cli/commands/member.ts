/** `member add|remove|update|list|promote` (etcdctl's member_command.go). */
import { ClusterService } from '../../proto/index.ts';
import { CliExit, type CommandContext, type CommandSpec, ExitCode, flag } from '../command.ts';
import { FlagType } from '../flags.ts';
import { goQuote } from '../go-format.ts';
import { SimplePrinter } from '../printers/index.ts';
import { orExit, parseUintBase } from './util.ts';

function memberIdArg(ctx: CommandContext): bigint {
  if (ctx.args.length !== 1) throw new CliExit(ExitCode.BAD_ARGS, 'member ID is not provided');
  const id = parseUintBase(ctx.args[0]!, 16);
  if ('error' in id) throw new CliExit(ExitCode.BAD_ARGS, `bad member ID arg (${id.error}), expecting ID in Hex`);
  return id.value;
}

const add: CommandSpec = {
  use: 'add <memberName> [options]',
  short: 'Adds a member into the cluster',
  flags: [
    flag('peer-urls', FlagType.STRING, '', 'comma separated peer URLs for the new member.'),
    flag('learner', FlagType.BOOL, 'false', 'indicates if the new member is raft learner'),
  ],
  run: async (ctx) => {
    if (ctx.args.length < 1) throw new CliExit(ExitCode.BAD_ARGS, 'member name not provided');
    if (ctx.args.length > 1) {
      let message = 'too many arguments';
      for (const s of ctx.args) if (s.toLowerCase().startsWith('http')) message += `, did you mean --peer-urls=${s}`;
      throw new CliExit(ExitCode.BAD_ARGS, message);
    }
    const name = ctx.args[0]!;
    const peerUrls = ctx.flags.string('peer-urls');
    if (peerUrls.length === 0) throw new CliExit(ExitCode.BAD_ARGS, 'member peer urls not provided');
    const client = await ctx.client();
    const request = { peerURLs: peerUrls.split(','), isLearner: ctx.flags.bool('learner') };
    const response = await orExit(() => client.call(ClusterService.MemberAdd, request, { idempotent: false }));
    const printer = ctx.printer();
    printer.memberAdd(response);
    if (!(printer instanceof SimplePrinter)) return;
    const newId = response.member?.ID;
    const conf: string[] = [];
    for (const m of response.members) {
      for (const u of m.peerURLs) conf.push(`${m.ID === newId ? name : m.name}=${u}`);
    }
    ctx.io.stdout.write(
      `\nETCD_NAME=${goQuote(name)}\nETCD_INITIAL_CLUSTER=${goQuote(conf.join(','))}\n` +
        `ETCD_INITIAL_ADVERTISE_PEER_URLS=${goQuote(peerUrls)}\nETCD_INITIAL_CLUSTER_STATE="existing"\n`,
    );
  },
};

const remove: CommandSpec = {
  use: 'remove <memberID>',
  short: 'Removes a member from the cluster',
  run: async (ctx) => {
    const id = memberIdArg(ctx);
    const client = await ctx.client();
    const response = await orExit(() => client.call(ClusterService.MemberRemove, { ID: id }, { idempotent: false }));
    ctx.printer().memberRemove(id, response);
  },
};

const update: CommandSpec = {
  use: 'update <memberID> [options]',
  short: 'Updates a member in the cluster',
  flags: [flag('peer-urls', FlagType.STRING, '', 'comma separated peer URLs for the updated member.')],
  run: async (ctx) => {
    const id = memberIdArg(ctx);
    const peerUrls = ctx.flags.string('peer-urls');
    if (peerUrls.length === 0) throw new CliExit(ExitCode.BAD_ARGS, 'member peer urls not provided');
    const client = await ctx.client();
    const request = { ID: id, peerURLs: peerUrls.split(',') };
    const response = await orExit(() => client.call(ClusterService.MemberUpdate, request, { idempotent: false }));
    ctx.printer().memberUpdate(id, response);
  },
};

const list: CommandSpec = {
  use: 'list',
  short: 'Lists all members in the cluster',
  long: `When --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.
The items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.
`,
  run: async (ctx) => {
    const client = await ctx.client();
    const response = await orExit(() =>
      client.call(ClusterService.MemberList, { linearizable: false }, { idempotent: true }),
    );
    ctx.printer().memberList(response);
  },
};

const promote: CommandSpec = {
  use: 'promote <memberID>',
  short: 'Promotes a non-voting member in the cluster',
  long: `Promotes a non-voting learner member to a voting one in the cluster.
`,
  run: async (ctx) => {
    const id = memberIdArg(ctx);
    const client = await ctx.client();
    const response = await orExit(() => client.call(ClusterService.MemberPromote, { ID: id }, { idempotent: false }));
    ctx.printer().memberPromote(id, response);
  },
};

export const memberCommand: CommandSpec = {
  use: 'member <subcommand>',
  short: 'Membership related commands',
  subcommands: [add, remove, update, list, promote],
};
