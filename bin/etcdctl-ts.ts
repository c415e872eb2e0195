#!/usr/bin/env node
// etcdctl-ts: etcdctl v3's commands, flags and output on the etcd-ts client.
import { Input } from '../src/cli/io.ts';
import { run } from '../src/cli/main.ts';

/** After SIGINT or SIGTERM, a command has this long to finish (lock and elect release first). */
const INTERRUPT_GRACE_MS = 2_000;
const EXIT_INTERRUPTED = 130;

const interrupted = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    // A second signal ends the process at once.
    if (interrupted.signal.aborted) process.exit(EXIT_INTERRUPTED);
    interrupted.abort();
    setTimeout(() => process.exit(EXIT_INTERRUPTED), INTERRUPT_GRACE_MS).unref();
  });
}
// A reader that went away (`etcdctl-ts get --prefix '' | head -1`) ends the output quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

const code = await run(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: new Input(process.stdin),
  env: process.env,
  interrupted: interrupted.signal,
});
process.exitCode = code;
// Nothing the command started may keep the process alive once it is done.
process.stdin.destroy();
