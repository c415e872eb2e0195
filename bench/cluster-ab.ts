/**
 * Sequential puts (put_seq_c1: 1 client, 4 000 puts, 256-byte values) on fresh 3-member clusters
 * for several variants side by side: the real etcd and etcd-ts members run with different Node
 * flags. Each round runs every variant once on its own fresh cluster, in an order that reverses
 * from round to round; the tool's run is cut into segments so that the warm-up shows. Prints
 * every run, then per variant the median puts/s, CPU of the three members per put, the median
 * of each segment, and the median of the per-round ratios to the first variant.
 *
 *   node --import tsx bench/cluster-ab.ts --variant etcd \
 *     --variant v8=etcd-ts --node-arg v8=--invocation-count-for-maglev=400 \
 *     --node-arg v8=--minimum-invocations-after-ic-update=500 --variant ts=etcd-ts \
 *     [--mode leader|spread] [--rounds 8] [--segments 4] [--results FILE]
 *
 * A variant is `etcd` or `LABEL=etcd-ts` (the compiled build, node_modules/.cache/etcd-ts-ab/dist,
 * run by the Node that runs this script, with that label's `--node-arg`s). `--mode leader` sends
 * every put to the leader (`--target-leader`), `spread` to the tool's pick of the three members.
 * Every run is appended as a JSON line to --results (default bench/results/cluster-ab.jsonl).
 * Not part of npm test.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Cluster, MemberKind } from '../test/helpers/cluster.ts';
import { buildInto } from './lib/build.ts';
import { defaultToolPath } from './lib/config.ts';
import { fmtInt, median } from './lib/report.ts';
import { ensureBenchmarkTool, runSegments } from './lib/tool.ts';

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
const BUILD_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'etcd-ts-ab', 'dist');
const ETCD_TS_ENTRY = join(BUILD_DIR, 'bin', 'etcd-ts.js');
const PUTS = 4000;
const TOOL_TIMEOUT_MS = 300_000;

export interface Variant {
  label: string;
  kind: MemberKind;
  nodeArgs: string[];
}

export interface Run {
  round: number;
  variant: string;
  mode: string;
  opsPerSec: number;
  segmentOpsPerSec: number[];
  cpuUsPerPut: number;
}

export function parseVariants(specs: readonly string[], nodeArgs: readonly string[]): Variant[] {
  const variants = specs.map((spec): Variant => {
    if (spec === 'etcd') return { label: 'etcd', kind: MemberKind.ETCD, nodeArgs: [] };
    const [label, kind] = spec.split('=', 2);
    if (kind !== 'etcd-ts' || !label) throw new Error(`--variant ${spec}: expected etcd or LABEL=etcd-ts`);
    return { label, kind: MemberKind.ETCD_TS, nodeArgs: [] };
  });
  for (const arg of nodeArgs) {
    const at = arg.indexOf('=');
    const variant = variants.find((v) => v.label === arg.slice(0, at));
    if (at < 0 || variant === undefined || variant.kind !== MemberKind.ETCD_TS)
      throw new Error(`--node-arg ${arg}: expected LABEL=ARG for an etcd-ts variant`);
    variant.nodeArgs.push(arg.slice(at + 1));
  }
  if (new Set(variants.map((v) => v.label)).size !== variants.length) throw new Error('variant labels must differ');
  if (variants.length === 0) throw new Error('no --variant given');
  return variants;
}

async function measure(tool: string, variant: Variant, leader: boolean, segments: number): Promise<Omit<Run, 'round'>> {
  const cluster = await Cluster.start({
    size: 3,
    kind: variant.kind,
    etcdTsEntry: ETCD_TS_ENTRY,
    nodeArgs: variant.nodeArgs,
  });
  try {
    const args = [
      `--endpoints=${cluster.endpoints()}`,
      ...(leader ? ['--target-leader'] : []),
      ...['--conns', '1', '--clients', '1', 'put', '--total', String(Math.round(PUTS / segments))],
      ...['--val-size', '256', '--sequential-keys', '--key-space-size', '100000'],
    ];
    const pids = cluster.members.map((m) => m.pid!);
    const measured = await runSegments(tool, args, segments, pids, TOOL_TIMEOUT_MS);
    if (!measured.ok) throw new Error(`no summary (exit ${measured.run.exitCode}): ${measured.run.stderr.slice(-300)}`);
    const puts = measured.summaries.reduce((sum, s) => sum + s.ops, 0);
    const seconds = measured.summaries.reduce((sum, s) => sum + s.totalS, 0);
    return {
      variant: variant.label,
      mode: leader ? 'leader' : 'spread',
      opsPerSec: puts / seconds,
      segmentOpsPerSec: measured.summaries.map((s) => s.opsPerSec),
      cpuUsPerPut: (measured.cpuSeconds * 1e6) / puts,
    };
  } finally {
    await cluster.stop();
  }
}

export function summarizeRuns(runs: readonly Run[], variants: readonly Variant[]): string[] {
  const [base] = variants;
  const fmt = (v: number | null) => (v === null ? '–' : fmtInt(v));
  return variants.map((v) => {
    const own = runs.filter((r) => r.variant === v.label);
    const segments = own[0]?.segmentOpsPerSec.map((_, i) => fmt(median(own.map((r) => r.segmentOpsPerSec[i]!))));
    const ratios = own.flatMap((r) => {
      const b = runs.find((x) => x.variant === base!.label && x.round === r.round);
      return b === undefined ? [] : [r.opsPerSec / b.opsPerSec];
    });
    const ratio = median(ratios);
    return (
      `${v.label}: ${fmt(median(own.map((r) => r.opsPerSec)))} puts/s, ${fmt(median(own.map((r) => r.cpuUsPerPut)))} µs CPU/put, ` +
      `segments ${segments?.join(' ') ?? '–'}, per-round ratio to ${base!.label} ${ratio === null ? '–' : ratio.toFixed(2)}` +
      (ratios.length > 0 ? ` (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})` : '')
    );
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      variant: { type: 'string', multiple: true, default: [] },
      'node-arg': { type: 'string', multiple: true, default: [] },
      mode: { type: 'string', default: 'leader' },
      rounds: { type: 'string', default: '8' },
      segments: { type: 'string', default: '4' },
      results: { type: 'string', default: join(REPO_ROOT, 'bench', 'results', 'cluster-ab.jsonl') },
    },
  });
  const variants = parseVariants(values.variant, values['node-arg']);
  if (values.mode !== 'leader' && values.mode !== 'spread') throw new Error('--mode is leader or spread');
  const rounds = Number(values.rounds);
  const segments = Number(values.segments);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer');
  if (!Number.isInteger(segments) || segments < 1 || PUTS % segments !== 0)
    throw new Error(`--segments must divide ${PUTS}`);
  const tool = defaultToolPath(process.env);
  ensureBenchmarkTool(tool);
  if (variants.some((v) => v.kind === MemberKind.ETCD_TS)) buildInto(REPO_ROOT, BUILD_DIR, ETCD_TS_ENTRY);
  mkdirSync(dirname(values.results), { recursive: true });

  const runs: Run[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const variant of round % 2 === 0 ? variants : [...variants].reverse()) {
      const run = { round, ...(await measure(tool, variant, values.mode === 'leader', segments)) };
      runs.push(run);
      console.log(JSON.stringify(run));
      appendFileSync(values.results, `${JSON.stringify({ ...run, nodeArgs: variant.nodeArgs })}\n`);
    }
  }
  console.log(summarizeRuns(runs, variants).join('\n'));
}

if (process.argv[1] !== undefined && import.meta.url === `file://${resolve(process.argv[1])}`) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exitCode = 1;
  });
}
