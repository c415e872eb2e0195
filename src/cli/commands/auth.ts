/** `auth enable|disable|status` (etcdctl's auth_command.go; `status` as etcdctl 3.5 has it). */
import { EtcdError } from '../../client/index.ts';
import { AuthService } from '../../proto/index.ts';
import { CliExit, type CommandSpec, ExitCode } from '../command.ts';
import { printAuthStatus } from './auth-output.ts';
import { orExit } from './util.ts';

const ROOT_ROLE_MISSING = 'etcdserver: root user does not have root role';

const enable: CommandSpec = {
  use: 'enable',
  short: 'Enables authentication',
  run: async (ctx) => {
    if (ctx.args.length !== 0) {
      throw new CliExit(ExitCode.BAD_ARGS, 'auth enable command does not accept any arguments');
    }
    const client = await ctx.client();
    const timeoutMs = ctx.commandTimeoutMs();
    // As etcdctl: a root user without the root role gets it (the role is made first).
    await orExit(async () => {
      for (;;) {
        try {
          await client.call(AuthService.AuthEnable, {}, { idempotent: false, timeoutMs });
          return;
        } catch (err) {
          if (!(err instanceof EtcdError && err.details === ROOT_ROLE_MISSING)) throw err;
        }
        await client.call(AuthService.RoleAdd, { name: 'root' }, { idempotent: false, timeoutMs });
        await client.call(AuthService.UserGrantRole, { user: 'root', role: 'root' }, { idempotent: false, timeoutMs });
      }
    });
    ctx.io.stdout.write('Authentication Enabled\n');
  },
};

const disable: CommandSpec = {
  use: 'disable',
  short: 'Disables authentication',
  run: async (ctx) => {
    if (ctx.args.length !== 0) {
      throw new CliExit(ExitCode.BAD_ARGS, 'auth disable command does not accept any arguments');
    }
    const client = await ctx.client();
    const timeoutMs = ctx.commandTimeoutMs();
    await orExit(() => client.call(AuthService.AuthDisable, {}, { idempotent: false, timeoutMs }));
    ctx.io.stdout.write('Authentication Disabled\n');
  },
};

const status: CommandSpec = {
  use: 'status',
  short: 'Returns authentication status',
  run: async (ctx) => {
    if (ctx.args.length !== 0) {
      throw new CliExit(ExitCode.BAD_ARGS, 'auth status command does not accept any arguments');
    }
    const client = await ctx.client();
    const timeoutMs = ctx.commandTimeoutMs();
    const resp = await orExit(() => client.call(AuthService.AuthStatus, {}, { idempotent: true, timeoutMs }));
    printAuthStatus(ctx, resp);
  },
};

export const authCommand: CommandSpec = {
  use: 'auth <enable or disable>',
  short: 'Enable or disable authentication',
  subcommands: [disable, enable, status],
};
