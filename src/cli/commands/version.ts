/** `version`: the version of etcd this tool matches and the API version it speaks. */
import { VERSION } from '../../version.ts';
import type { CommandSpec } from '../command.ts';

export const versionCommand: CommandSpec = {
  use: 'version',
  short: 'Prints the version of etcdctl',
  run: async (ctx) => {
    const api = VERSION.server.split('.').slice(0, 2).join('.');
    ctx.io.stdout.write(`etcdctl version: ${VERSION.server} (etcdctl-ts ${VERSION.etcdTs})\nAPI version: ${api}\n`);
  },
};
