/** `role add|delete|get|list|grant-permission|revoke-permission` (etcdctl's role_command.go). */
import { AuthService, Permission_Type } from '../../proto/index.ts';
import { CliExit, type CommandContext, type CommandSpec, ExitCode, flag } from '../command.ts';
import { FlagType } from '../flags.ts';
import { printChange, printRoleGet, printRoleList } from './auth-output.ts';
import { orExit, prefixEndOf } from './util.ts';

/** clientv3.StrToPermissionType: read, write or readwrite, in any case. */
function permissionType(text: string): Permission_Type {
  const type = (Permission_Type as Record<string, Permission_Type | undefined>)[text.toUpperCase()];
  if (type === undefined) throw new CliExit(ExitCode.BAD_ARGS, `invalid permission type: ${text}`);
  return type;
}

/**
 * etcdctl's permRange: the key and range end of `<key> [endkey]` with --prefix or --from-key.
 * An empty key with either flag means every key ("\0" to the open end).
 */
function permRange(ctx: CommandContext, args: readonly string[]): { key: Buffer; end: Buffer } {
  const prefix = ctx.flags.bool('prefix');
  const fromKey = ctx.flags.bool('from-key');
  const key = args[0]!;
  if (key.length === 0) {
    if (prefix && fromKey) throw new CliExit(ExitCode.BAD_ARGS, '--from-key and --prefix flags are mutually exclusive');
    return { key: Buffer.from([0]), end: prefix || fromKey ? Buffer.from([0]) : Buffer.alloc(0) };
  }
  if (args.length === 1) {
    if (prefix) {
      if (fromKey) throw new CliExit(ExitCode.BAD_ARGS, '--from-key and --prefix flags are mutually exclusive');
      return { key: Buffer.from(key), end: prefixEndOf(Buffer.from(key)) };
    }
    return { key: Buffer.from(key), end: fromKey ? Buffer.from([0]) : Buffer.alloc(0) };
  }
  if (prefix) throw new CliExit(ExitCode.BAD_ARGS, 'unexpected endkey argument with --prefix flag');
  if (fromKey) throw new CliExit(ExitCode.BAD_ARGS, 'unexpected endkey argument with --from-key flag');
  return { key: Buffer.from(key), end: Buffer.from(args[1]!) };
}

const add: CommandSpec = {
  use: 'add <role name>',
  short: 'Adds a new role',
  run: async (ctx) => {
    if (ctx.args.length !== 1)
      throw new CliExit(ExitCode.BAD_ARGS, 'role add command requires role name as its argument.');
    const name = ctx.args[0]!;
    const client = await ctx.client();
    const resp = await orExit(() =>
      client.call(AuthService.RoleAdd, { name }, { idempotent: false, timeoutMs: ctx.commandTimeoutMs() }),
    );
    printChange(ctx, `Role ${name} created`, resp, (r) => AuthService.RoleAdd.encodeResponse(r));
  },
};

const del: CommandSpec = {
  use: 'delete <role name>',
  short: 'Deletes a role',
  run: async (ctx) => {
    if (ctx.args.length !== 1) {
      throw new CliExit(ExitCode.BAD_ARGS, 'role delete command requires role name as its argument.');
    }
    const role = ctx.args[0]!;
    const client = await ctx.client();
    const resp = await orExit(() =>
      client.call(AuthService.RoleDelete, { role }, { idempotent: false, timeoutMs: ctx.commandTimeoutMs() }),
    );
    printChange(ctx, `Role ${role} deleted`, resp, (r) => AuthService.RoleDelete.encodeResponse(r));
  },
};

const get: CommandSpec = {
  use: 'get <role name>',
  short: 'Gets detailed information of a role',
  run: async (ctx) => {
    if (ctx.args.length !== 1)
      throw new CliExit(ExitCode.BAD_ARGS, 'role get command requires role name as its argument.');
    const role = ctx.args[0]!;
    const client = await ctx.client();
    const resp = await orExit(() =>
      client.call(AuthService.RoleGet, { role }, { idempotent: true, timeoutMs: ctx.commandTimeoutMs() }),
    );
    printRoleGet(ctx, role, resp);
  },
};

const list: CommandSpec = {
  use: 'list',
  short: 'Lists all roles',
  run: async (ctx) => {
    if (ctx.args.length !== 0) throw new CliExit(ExitCode.BAD_ARGS, 'role list command requires no arguments.');
    const client = await ctx.client();
    const resp = await orExit(() =>
      client.call(AuthService.RoleList, {}, { idempotent: true, timeoutMs: ctx.commandTimeoutMs() }),
    );
    printRoleList(ctx, resp);
  },
};

const grantPermission: CommandSpec = {
  use: 'grant-permission [options] <role name> <permission type> <key> [endkey]',
  short: 'Grants a key to a role',
  flags: [
    flag('prefix', FlagType.BOOL, 'false', 'grant a prefix permission'),
    flag(
      'from-key',
      FlagType.BOOL,
      'false',
      'grant a permission of keys that are greater than or equal to the given key using byte compare',
    ),
  ],
  run: async (ctx) => {
    if (ctx.args.length < 3) {
      throw new CliExit(
        ExitCode.BAD_ARGS,
        'role grant command requires role name, permission type, and key [endkey] as its argument.',
      );
    }
    const name = ctx.args[0]!;
    const permType = permissionType(ctx.args[1]!);
    const { key, end } = permRange(ctx, ctx.args.slice(2));
    const client = await ctx.client();
    const request = { name, perm: { permType, key, rangeEnd: end } };
    const resp = await orExit(() =>
      client.call(AuthService.RoleGrantPermission, request, { idempotent: false, timeoutMs: ctx.commandTimeoutMs() }),
    );
    printChange(ctx, `Role ${name} updated`, resp, (r) => AuthService.RoleGrantPermission.encodeResponse(r));
  },
};

const revokePermission: CommandSpec = {
  use: 'revoke-permission <role name> <key> [endkey]',
  short: 'Revokes a key from a role',
  flags: [
    flag('prefix', FlagType.BOOL, 'false', 'revoke a prefix permission'),
    flag(
      'from-key',
      FlagType.BOOL,
      'false',
      'revoke a permission of keys that are greater than or equal to the given key using byte compare',
    ),
  ],
  run: async (ctx) => {
    if (ctx.args.length < 2) {
      throw new CliExit(
        ExitCode.BAD_ARGS,
        'role revoke-permission command requires role name and key [endkey] as its argument.',
      );
    }
    const role = ctx.args[0]!;
    const { key, end } = permRange(ctx, ctx.args.slice(1));
    const client = await ctx.client();
    const request = { role, key, rangeEnd: end };
    const resp = await orExit(() =>
      client.call(AuthService.RoleRevokePermission, request, { idempotent: false, timeoutMs: ctx.commandTimeoutMs() }),
    );
    // etcdctl names the key as typed and the range end it sent.
    const typed = ctx.args[1]!;
    const endText = end.toString('latin1');
    const sentence =
      end.length === 0
        ? `Permission of key ${typed} is revoked from role ${role}`
        : endText !== '\u0000'
          ? `Permission of range [${typed}, ${endText}) is revoked from role ${role}`
          : `Permission of range [${typed}, <open ended> is revoked from role ${role}`;
    printChange(ctx, sentence, resp, (r) => AuthService.RoleRevokePermission.encodeResponse(r));
  },
};

export const roleCommand: CommandSpec = {
  use: 'role <subcommand>',
  short: 'Role related commands',
  subcommands: [add, del, get, grantPermission, list, revokePermission],
};
