/** `user add|delete|get|list|passwd|grant-role|revoke-role` (etcdctl's user_command.go). */
import { AuthService } from '../../proto/index.ts';
import { CliExit, type CommandContext, type CommandSpec, ExitCode, flag } from '../command.ts';
import { FlagType } from '../flags.ts';
import { printChange, printRoleGet, printUserGet, printUserList } from './auth-output.ts';
import { orExit } from './util.ts';

/** Go's `fmt.Scanf("%s")`: the first word of standard input. */
async function scanWord(ctx: CommandContext): Promise<string> {
  for (;;) {
    const line = await ctx.io.stdin.readLine();
    if (line === undefined) return '';
    const word = line.trim().split(/\s+/)[0] ?? '';
    if (word !== '') return word;
    // Scanf stops at the first newline: an empty first line is an empty password.
    return '';
  }
}

/** etcdctl's readPasswordInteractive: asked twice, and both must match. */
async function readPasswordInteractive(ctx: CommandContext, name: string): Promise<string> {
  const ask = async (prompt: string): Promise<string> => {
    ctx.io.stdout.write(prompt);
    const line = (await ctx.io.stdin.readLine()) ?? '';
    ctx.io.stdout.write('\n');
    return line.replace(/\r?\n$/, '');
  };
  const first = await ask(`Password of ${name}: `);
  if (first.length === 0) throw new CliExit(ExitCode.BAD_ARGS, 'empty password');
  const second = await ask(`Type password of ${name} again for confirmation: `);
  if (first !== second) throw new CliExit(ExitCode.BAD_ARGS, 'given passwords are different');
  return first;
}

const add: CommandSpec = {
  use: 'add <user name or user:password> [options]',
  short: 'Adds a new user',
  flags: [
    flag('interactive', FlagType.BOOL, 'true', 'Read password from stdin instead of interactive terminal'),
    flag('new-user-password', FlagType.STRING, '', 'Supply password from the command line flag'),
    flag('no-password', FlagType.BOOL, 'false', 'Create a user without password (CN based auth only)'),
  ],
  run: async (ctx) => {
    if (ctx.args.length !== 1) {
      throw new CliExit(ExitCode.BAD_ARGS, 'user add command requires user name as its argument');
    }
    const arg = ctx.args[0]!;
    let user = arg;
    let password = '';
    const noPassword = ctx.flags.bool('no-password');
    if (!noPassword) {
      const fromFlag = ctx.flags.string('new-user-password');
      const colon = arg.indexOf(':');
      if (fromFlag !== '') {
        password = fromFlag;
      } else if (colon < 0) {
        password = ctx.flags.bool('interactive') ? await readPasswordInteractive(ctx, arg) : await scanWord(ctx);
      } else {
        user = arg.slice(0, colon);
        password = arg.slice(colon + 1);
        if (user.length === 0) throw new CliExit(ExitCode.BAD_ARGS, 'empty user name is not allowed');
      }
    }
    const client = await ctx.client();
    const request = { name: user, password, options: { noPassword }, hashedPassword: '' };
    const resp = await orExit(() =>
      client.call(AuthService.UserAdd, request, { idempotent: false, timeoutMs: ctx.commandTimeoutMs() }),
    );
    printChange(ctx, `User ${user} created`, resp, (r) => AuthService.UserAdd.encodeResponse(r));
  },
};

const del: CommandSpec = {
  use: 'delete <user name>',
  short: 'Deletes a user',
  run: async (ctx) => {
    if (ctx.args.length !== 1) {
      throw new CliExit(ExitCode.BAD_ARGS, 'user delete command requires user name as its argument');
    }
    const name = ctx.args[0]!;
    const client = await ctx.client();
    const resp = await orExit(() =>
      client.call(AuthService.UserDelete, { name }, { idempotent: false, timeoutMs: ctx.commandTimeoutMs() }),
    );
    printChange(ctx, `User ${name} deleted`, resp, (r) => AuthService.UserDelete.encodeResponse(r));
  },
};

const get: CommandSpec = {
  use: 'get <user name> [options]',
  short: 'Gets detailed information of a user',
  flags: [flag('detail', FlagType.BOOL, 'false', 'Show permissions of roles granted to the user')],
  run: async (ctx) => {
    if (ctx.args.length !== 1) {
      throw new CliExit(ExitCode.BAD_ARGS, 'user get command requires user name as its argument');
    }
    const name = ctx.args[0]!;
    const client = await ctx.client();
    const timeoutMs = ctx.commandTimeoutMs();
    const resp = await orExit(() => client.call(AuthService.UserGet, { name }, { idempotent: true, timeoutMs }));
    if (!ctx.flags.bool('detail')) {
      printUserGet(ctx, name, resp);
      return;
    }
    ctx.io.stdout.write(`User: ${name}\n`);
    for (const role of resp.roles) {
      ctx.io.stdout.write('\n');
      const roleResp = await orExit(() => client.call(AuthService.RoleGet, { role }, { idempotent: true, timeoutMs }));
      printRoleGet(ctx, role, roleResp);
    }
  },
};

const list: CommandSpec = {
  use: 'list',
  short: 'Lists all users',
  run: async (ctx) => {
    if (ctx.args.length !== 0) throw new CliExit(ExitCode.BAD_ARGS, 'user list command requires no arguments');
    const client = await ctx.client();
    const resp = await orExit(() =>
      client.call(AuthService.UserList, {}, { idempotent: true, timeoutMs: ctx.commandTimeoutMs() }),
    );
    printUserList(ctx, resp);
  },
};

const passwd: CommandSpec = {
  use: 'passwd <user name> [options]',
  short: 'Changes password of user',
  flags: [
    flag('interactive', FlagType.BOOL, 'true', 'If true, read password from stdin instead of interactive terminal'),
  ],
  run: async (ctx) => {
    if (ctx.args.length !== 1) {
      throw new CliExit(ExitCode.BAD_ARGS, 'user passwd command requires user name as its argument');
    }
    const name = ctx.args[0]!;
    const password = ctx.flags.bool('interactive') ? await readPasswordInteractive(ctx, name) : await scanWord(ctx);
    const client = await ctx.client();
    const request = { name, password, hashedPassword: '' };
    const resp = await orExit(() =>
      client.call(AuthService.UserChangePassword, request, { idempotent: false, timeoutMs: ctx.commandTimeoutMs() }),
    );
    printChange(ctx, 'Password updated', resp, (r) => AuthService.UserChangePassword.encodeResponse(r));
  },
};

const grantRole: CommandSpec = {
  use: 'grant-role <user name> <role name>',
  short: 'Grants a role to a user',
  run: async (ctx) => {
    if (ctx.args.length !== 2) {
      throw new CliExit(ExitCode.BAD_ARGS, 'user grant command requires user name and role name as its argument');
    }
    const [user, role] = ctx.args as [string, string];
    const client = await ctx.client();
    const resp = await orExit(() =>
      client.call(AuthService.UserGrantRole, { user, role }, { idempotent: false, timeoutMs: ctx.commandTimeoutMs() }),
    );
    printChange(ctx, `Role ${role} is granted to user ${user}`, resp, (r) =>
      AuthService.UserGrantRole.encodeResponse(r),
    );
  },
};

const revokeRole: CommandSpec = {
  use: 'revoke-role <user name> <role name>',
  short: 'Revokes a role from a user',
  run: async (ctx) => {
    if (ctx.args.length !== 2) {
      throw new CliExit(ExitCode.BAD_ARGS, 'user revoke-role requires user name and role name as its argument');
    }
    const [name, role] = ctx.args as [string, string];
    const client = await ctx.client();
    const resp = await orExit(() =>
      client.call(AuthService.UserRevokeRole, { name, role }, { idempotent: false, timeoutMs: ctx.commandTimeoutMs() }),
    );
    printChange(ctx, `Role ${role} is revoked from user ${name}`, resp, (r) =>
      AuthService.UserRevokeRole.encodeResponse(r),
    );
  },
};

export const userCommand: CommandSpec = {
  use: 'user <subcommand>',
  short: 'User related commands',
  subcommands: [add, del, get, grantRole, list, passwd, revokeRole],
};
