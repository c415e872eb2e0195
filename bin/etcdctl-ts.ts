#!/usr/bin/env node
// etcdctl-ts: etcdctl v3's commands, flags and output on the etcd-ts client.
import { Input } from '../src/cli/io.ts';
import { run } from '../src/cli/main.ts';

const interrupted = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    // A second signal ends the process at once.
    if (interrupted.signal.aborted) process.exit(130);
    interrupted.abort();
  });
}

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
