/**
 * How long one CLI command takes from start to exit, etcdctl-ts beside the real etcdctl: each
 * command of COMMANDS run ROUNDS times by each CLI against the same real etcd (one member on
 * loopback ports), the two CLIs alternating (which goes first alternates too), every run
 * checked (exit code 0, the same standard output). Scripts call etcdctl once per key, so this
 * time, mostly the CLI's own start-up, is what they wait for.
 *
 *   npm run bench:cli
 *   ROUNDS=30 ETCD_BIN=/usr/bin/etcd ETCDCTL_BIN=/usr/bin/etcdctl
 *   ETCDCTL_TS_ENTRY=<dir>/bin/etcdctl-ts.js (another build, to compare two versions)
 *
 * etcdctl-ts runs as `node <build>/bin/etcdctl-ts.js` on the Node that runs this script, from
 * `npm run build` into a private directory (unless ETCDCTL_TS_ENTRY names a built entry).
 * Prints a table (medians and 90th percentiles of the wall time, ratio etcd-ts / etcd) and
 * writes every run's numbers to bench/cli-start.results.json.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildInto } from './lib/build.ts';
import { intEnv, TargetKind } from './lib/config.ts';
import { freePorts, RunningServer } from './lib/server.ts';

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
const BUILD_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'etcd-ts-bench-cli', 'dist');
const BUILT_ENTRY = join(BUILD_DIR, 'bin', 'etcdctl-ts.js');
const RESULTS_PATH = join(REPO_ROOT, 'bench', 'cli-start.results.json');
const RUN_TIMEOUT_MS = 30_000;

/** The commands timed, after `--endpoints`; `put` first, so that `get` finds its key. */
const COMMANDS: readonly (readonly string[])[] = [
  ['put', 'bench-cli-key', 'bench-cli-value'],
  ['get', 'bench-cli-key'],
  ['endpoint', 'health'],
];

const CLI = { etcdctl: 'etcdctl', etcdctlTs: 'etcdctl-ts' } as const;
type Cli = (typeof CLI)[keyof typeof CLI];

interface Run {
  cli: Cli;
  command: string;
  ms: number;
}

/** Runs one CLI command to its exit; the wall time from spawn to exit, and its output. */
function timeCommand(file: string, args: readonly string[]): Promise<{ ms: number; code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, ETCDCTL_API: '3' };
    for (const name of Object.keys(env)) if (name.startsWith('ETCDCTL_') && name !== 'ETCDCTL_API') delete env[name];
    const t0 = performance.now();
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.resume();
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.once('error', reject);
    // 'close': the process has exited and its output has been read to the end.
    child.once('close', (code) => {
      const ms = performance.now() - t0;
      clearTimeout(timer);
      resolve({ ms, code, out: Buffer.concat(out).toString('utf8') });
    });
  });
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** `endpoint health` names the endpoint and the time it took: compare what it says besides. */
function comparable(out: string): string {
  return out.replace(/took = [^\n]*/g, 'took = ?');
}

async function main(): Promise<void> {
  const rounds = intEnv('ROUNDS', 20, 1, 1000);
  const etcdPath = process.env.ETCD_BIN ?? '/usr/bin/etcd';
  const etcdctlPath = process.env.ETCDCTL_BIN ?? '/usr/bin/etcdctl';
  const entry = process.env.ETCDCTL_TS_ENTRY ?? BUILT_ENTRY;
  if (process.env.ETCDCTL_TS_ENTRY === undefined) buildInto(REPO_ROOT, BUILD_DIR, BUILT_ENTRY);
  const dir = mkdtempSync(join(tmpdir(), 'etcd-ts-bench-cli-'));
  const ports = await freePorts();
  const server = await RunningServer.start(
    TargetKind.etcd,
    { etcdPath, etcdTsEntry: '' },
    join(dir, 'data'),
    ports,
    join(dir, 'etcd.log'),
  );
  const runs: Run[] = [];
  try {
    const endpoint = `--endpoints=${server.endpoint}`;
    const argv: Record<Cli, (command: readonly string[]) => [string, string[]]> = {
      etcdctl: (command) => [etcdctlPath, [endpoint, ...command]],
      'etcdctl-ts': (command) => [process.execPath, [entry, endpoint, ...command]],
    };
    // One unmeasured round: the files both CLIs read are in the page cache for every measured one.
    for (let round = -1; round < rounds; round++) {
      for (const command of COMMANDS) {
        const order: Cli[] = round % 2 === 0 ? [CLI.etcdctl, CLI.etcdctlTs] : [CLI.etcdctlTs, CLI.etcdctl];
        const outputs: string[] = [];
        for (const cli of order) {
          const [file, args] = argv[cli](command);
          const r = await timeCommand(file, args);
          if (r.code !== 0) throw new Error(`${cli} ${command.join(' ')} exited ${r.code}: ${r.out}`);
          outputs.push(comparable(r.out));
          if (round >= 0) runs.push({ cli, command: command.join(' '), ms: r.ms });
        }
        if (outputs[0] !== outputs[1]) {
          throw new Error(
            `${command.join(' ')}: etcdctl and etcdctl-ts printed different output:\n${outputs.join('\n---\n')}`,
          );
        }
      }
    }
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const rows = COMMANDS.map((command) => {
    const name = command.join(' ');
    const of = (cli: Cli) =>
      runs
        .filter((r) => r.cli === cli && r.command === name)
        .map((r) => r.ms)
        .sort((a, b) => a - b);
    const a = of(CLI.etcdctl);
    const b = of(CLI.etcdctlTs);
    return {
      command: name,
      etcdctl: { p50: quantile(a, 0.5), p90: quantile(a, 0.9) },
      etcdctlTs: { p50: quantile(b, 0.5), p90: quantile(b, 0.9) },
    };
  });
  const ms = (n: number) => n.toFixed(1);
  console.log(`\n${rounds} rounds; Node ${process.version}; wall time from spawn to exit, ms\n`);
  console.log('| command | p50 etcdctl | p50 etcdctl-ts | p50 ratio | p90 etcdctl | p90 etcdctl-ts |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.command} | ${ms(r.etcdctl.p50)} | ${ms(r.etcdctlTs.p50)} | ${(r.etcdctlTs.p50 / r.etcdctl.p50).toFixed(1)} | ${ms(r.etcdctl.p90)} | ${ms(r.etcdctlTs.p90)} |`,
    );
  }
  const date = new Date().toISOString();
  writeFileSync(RESULTS_PATH, `${JSON.stringify({ date, node: process.version, rounds, rows, runs }, null, 2)}\n`);
  console.log(`\n# every run: ${relative(REPO_ROOT, RESULTS_PATH)}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
