/** `put [options] <key> <value>` (etcdctl's put_command.go); the value may come from stdin. */
import { KVService, type PutRequest } from '../../proto/index.ts';
import { CliExit, type CommandSpec, ExitCode, flag } from '../command.ts';
import { type FlagSet, FlagType } from '../flags.ts';
import type { Input } from '../io.ts';
import { orExit, parseIntBase } from './util.ts';

export const PUT_FLAGS = [
  flag('lease', FlagType.STRING, '0', 'lease ID (in hexadecimal) to attach to the key'),
  flag('prev-kv', FlagType.BOOL, 'false', 'return the previous key-value pair before modification'),
  flag('ignore-value', FlagType.BOOL, 'false', 'updates the key using its current value'),
  flag('ignore-lease', FlagType.BOOL, 'false', 'updates the key using its current lease'),
];

const NEEDS_ARGS = 'put command needs 1 argument and input from stdin or 2 arguments';

/** The Put request of `put`'s arguments and flags (etcdctl's getPutOp). */
export async function putRequest(args: readonly string[], flags: FlagSet, stdin: Input): Promise<PutRequest> {
  if (args.length === 0) throw new CliExit(ExitCode.BAD_ARGS, NEEDS_ARGS);
  const key = Buffer.from(args[0]!);
  const ignoreValue = flags.bool('ignore-value');
  if (ignoreValue && args.length > 1) {
    throw new CliExit(ExitCode.BAD_ARGS, "put command needs only 1 argument when 'ignore-value' is set");
  }
  let value: Buffer = Buffer.alloc(0);
  if (!ignoreValue) {
    if (args.length > 1) value = Buffer.from(args[1]!);
    else {
      value = await stdin.readAll();
      if (value.length === 0) throw new CliExit(ExitCode.BAD_ARGS, NEEDS_ARGS);
    }
  }
  const lease = parseIntBase(flags.string('lease'), 16);
  if ('error' in lease) throw new CliExit(ExitCode.BAD_ARGS, `bad lease ID (${lease.error}), expecting ID in Hex`);
  return {
    key,
    value,
    lease: lease.value,
    prevKv: flags.bool('prev-kv'),
    ignoreValue,
    ignoreLease: flags.bool('ignore-lease'),
  };
}

export const putCommand: CommandSpec = {
  use: 'put [options] <key> <value> (<value> can also be given from stdin)',
  short: 'Puts the given key into the store',
  long: `
Puts the given key into the store.

When <value> begins with '-', <value> is interpreted as a flag.
Insert '--' for workaround:

$ put <key> -- <value>
$ put -- <key> <value>

If <value> isn't given as a command line argument and '--ignore-value' is not specified,
this command tries to read the value from standard input.

If <lease> isn't given as a command line argument and '--ignore-lease' is not specified,
this command tries to read the value from standard input.

For example,
$ cat file | put <key>
will store the content of the file to <key>.
`,
  flags: PUT_FLAGS,
  run: async (ctx) => {
    const request = await putRequest(ctx.args, ctx.flags, ctx.io.stdin);
    const client = await ctx.client();
    const response = await orExit(() => client.call(KVService.Put, request, { idempotent: false }));
    ctx.printer().put(response);
  },
};
