#!/usr/bin/env node
// etcdctl-ts: the command-line client. For now it only reports its version.
import { VERSION } from '../src/version.ts';

const API_VERSION = VERSION.server.split('.').slice(0, 2).join('.');

function main(argv: readonly string[]): number {
  const command = argv.find((arg) => !arg.startsWith('-'));
  if (command === 'version' || argv.includes('--version')) {
    process.stdout.write(`etcdctl-ts version: ${VERSION.etcdTs}\nAPI version: ${API_VERSION}\n`);
    return 0;
  }
  const what = command === undefined ? 'a command' : `command ${JSON.stringify(command)}`;
  process.stderr.write(`etcdctl-ts: ${what} is not available yet; only "version" is implemented\n`);
  return 1;
}

process.exitCode = main(process.argv.slice(2));
