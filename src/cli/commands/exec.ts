/** Running a command for `watch ... -- <command>` and `lock <name> <command>`. */
import { spawn } from 'node:child_process';
import { goQuote } from '../go-format.ts';
import type { CliIo } from '../io.ts';

/** Go's `%q` of a []string: `["echo" "a b"]`. */
export function quoteList(items: readonly string[]): string {
  return `[${items.map((i) => goQuote(i)).join(' ')}]`;
}

/**
 * Runs `argv` with `env` added to the process environment, its output copied to the CLI's;
 * resolves to undefined on success or Go's error text (`exit status 1`, ...).
 */
export function runCommand(
  argv: readonly string[],
  env: Record<string, string>,
  io: CliIo,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const [file, ...args] = argv;
    const child = spawn(file!, args, {
      env: { ...process.env, ...io.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (chunk: Buffer) => io.stdout.write(chunk));
    child.stderr.on('data', (chunk: Buffer) => io.stderr.write(chunk));
    child.once('error', (err: NodeJS.ErrnoException) => {
      resolve(err.code === 'ENOENT' ? `exec: ${goQuote(file!)}: executable file not found in $PATH` : err.message);
    });
    child.once('close', (code, signal) => {
      if (signal !== null) resolve(`signal: ${signal === 'SIGKILL' ? 'killed' : signal.toLowerCase()}`);
      else resolve(code === 0 ? undefined : `exit status ${code}`);
    });
  });
}
