// Medians over runs, ratios against the first target, and the Markdown that goes into
// bench/README.md under "Side by side with etcd".

import type { ResultsFile, RunResult } from './results.ts';
import { RunStatus } from './results.ts';
import { SCENARIOS, type ScenarioName } from './scenarios.ts';

export const SECTION_HEADING = '## Side by side with etcd';
/** A run whose interference (otherPct) is above this is counted as noisy in the report. */
export const NOISY_OTHER_PCT = 25;

const MiB = 1024 * 1024;

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** b / a, or null when either is missing or a is zero. */
export function ratio(b: number | null, a: number | null): number | null {
  return a === null || b === null || a === 0 ? null : b / a;
}

/** The median of a metric over the ok runs of one (scenario, target), with run counts. */
export interface Cell {
  value: number | null;
  ok: number;
  runs: number;
}

export function cell(results: readonly RunResult[], pick: (r: RunResult) => number | null): Cell {
  const ok = results.filter((r) => r.status === RunStatus.ok);
  const values = ok.map(pick).filter((v): v is number => v !== null && Number.isFinite(v));
  return { value: median(values), ok: ok.length, runs: results.length };
}

export interface Metric {
  title: string;
  pick: (r: RunResult) => number | null;
  format: (v: number) => string;
  /** A latency metric: left empty for scenarios whose latency the tool does not measure. */
  latency?: boolean;
}

export const fmtInt = (v: number): string => Math.round(v).toLocaleString('en-US');
/** Three significant digits, without exponent notation. */
export function fmtSig(v: number): string {
  if (v === 0) return '0';
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(v))));
  return v.toFixed(Math.min(digits, 6));
}
export const fmtMiB = (v: number): string => fmtSig(v / MiB);
export const fmtRatio = (v: number): string => v.toFixed(2);

const THROUGHPUT: Metric[] = [
  { title: 'ops/s', pick: (r) => r.opsPerSec, format: fmtInt },
  { title: 'p50 ms', pick: (r) => r.p50Ms, format: fmtSig, latency: true },
  { title: 'p99 ms', pick: (r) => r.p99Ms, format: fmtSig, latency: true },
];
const COST: Metric[] = [
  { title: 'server CPU µs/op', pick: (r) => r.serverCpuUsPerOp, format: fmtSig },
  { title: 'server peak RSS MiB', pick: (r) => r.serverPeakRssBytes, format: fmtMiB },
];
const LOAD: Metric[] = [
  { title: 'load ops/s', pick: (r) => r.opsPerSec, format: fmtInt },
  { title: 'load p99 ms', pick: (r) => r.p99Ms, format: fmtSig },
  { title: 'server CPU µs/put', pick: (r) => r.serverCpuUsPerOp, format: fmtSig },
  { title: 'RSS after load MiB', pick: (r) => r.load?.rssAfterLoadBytes ?? null, format: fmtMiB },
  { title: 'peak RSS MiB', pick: (r) => r.serverPeakRssBytes, format: fmtMiB },
  { title: 'data dir MiB (du)', pick: (r) => r.load?.dataDirBytes ?? null, format: fmtMiB },
  { title: 'data dir MiB (apparent)', pick: (r) => r.load?.dataDirApparentBytes ?? null, format: fmtMiB },
  { title: 'stop s', pick: (r) => (r.load === null ? null : r.load.stopMs / 1000), format: fmtSig },
  { title: 'restart s (to first linearizable read)', pick: (r) => msToS(r.load?.restartMs), format: fmtSig },
  { title: 'count of all keys after restart, ms', pick: (r) => r.load?.countMs ?? null, format: fmtSig },
  { title: 'RSS after restart MiB', pick: (r) => r.load?.rssAfterRestartBytes ?? null, format: fmtMiB },
];

function msToS(ms: number | null | undefined): number | null {
  return ms === null || ms === undefined ? null : ms / 1000;
}

function showCell(c: Cell, format: (v: number) => string): string {
  if (c.ok === 0) return c.runs === 0 ? '' : 'n/a';
  if (c.value === null) return '–';
  return c.ok < c.runs ? `${format(c.value)} (${c.ok}/${c.runs} runs)` : format(c.value);
}

/**
 * A table with one row per scenario and, for each metric, a column per target and a ratio
 * column per target after the first (target / first target).
 */
export function metricTable(file: ResultsFile, scenarios: readonly ScenarioName[], metrics: readonly Metric[]): string {
  const labels = file.settings.targets.map((t) => t.label);
  const base = labels[0] ?? '';
  const header = ['scenario'];
  for (const m of metrics) {
    for (const l of labels) header.push(`${m.title} ${l}`);
    for (const l of labels.slice(1)) header.push(labels.length === 2 ? `${m.title} ratio` : `${m.title} ${l}/${base}`);
  }
  const rows = [header, header.map(() => '---')];
  for (const s of scenarios) {
    const row: string[] = [s];
    for (const m of metrics) {
      if (m.latency === true && !SCENARIOS[s].latencyMeaningful) {
        row.push(...labels.map(() => '–'), ...labels.slice(1).map(() => ''));
        continue;
      }
      const cells = labels.map((l) => cell(runsOf(file, s, l), m.pick));
      for (const c of cells) row.push(showCell(c, m.format));
      for (const c of cells.slice(1)) {
        const q = ratio(c.value, cells[0]?.value ?? null);
        row.push(q === null ? '' : fmtRatio(q));
      }
    }
    rows.push(row);
  }
  return rows.map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** load_1m: one row per metric, a column per target, ratio columns. */
export function loadTable(file: ResultsFile): string {
  const labels = file.settings.targets.map((t) => t.label);
  const base = labels[0] ?? '';
  const header = ['load_1m', ...labels, ...labels.slice(1).map((l) => `${l} / ${base}`)];
  const rows = [header, header.map(() => '---')];
  for (const m of LOAD) {
    const cells = labels.map((l) => cell(runsOf(file, 'load_1m', l), m.pick));
    rows.push([
      m.title,
      ...cells.map((c) => showCell(c, m.format)),
      ...cells.slice(1).map((c) => {
        const q = ratio(c.value, cells[0]?.value ?? null);
        return q === null ? '' : fmtRatio(q);
      }),
    ]);
  }
  return rows.map((r) => `| ${r.join(' | ')} |`).join('\n');
}

function runsOf(file: ResultsFile, scenario: ScenarioName, label: string): RunResult[] {
  return file.results.filter((r) => r.scenario === scenario && r.target === label);
}

/** One line per (scenario, target) that had n/a runs or failed requests, with the first error. */
export function problemNotes(file: ResultsFile, scenarios: readonly ScenarioName[]): string[] {
  const notes: string[] = [];
  for (const s of scenarios) {
    for (const t of file.settings.targets) {
      const runs = runsOf(file, s, t.label);
      const na = runs.filter((r) => r.status === RunStatus.na);
      const failed = runs.filter((r) => r.status === RunStatus.ok && r.errors > 0);
      const loadErr = runs.filter((r) => r.status === RunStatus.ok && r.load?.error);
      if (na.length > 0) {
        notes.push(`${t.label}, ${s}: n/a in ${na.length} of ${runs.length} runs: ${oneLine(na[0]?.error ?? '')}`);
      }
      if (failed.length > 0) {
        const n = failed.reduce((sum, r) => sum + r.errors, 0);
        notes.push(
          `${t.label}, ${s}: ${n} failed requests in ${failed.length} runs: ${oneLine(failed[0]?.error ?? '')}`,
        );
      }
      if (loadErr.length > 0) notes.push(`${t.label}, ${s}: ${oneLine(loadErr[0]?.load?.error ?? '')}`);
      const redone = runs.filter((r) => r.attempts > 1);
      if (redone.length > 0) {
        notes.push(
          `${t.label}, ${s}: ${redone.length} of ${runs.length} runs redone after: ${oneLine(redone[0]?.firstAttemptError ?? '')}`,
        );
      }
    }
  }
  return notes;
}

function oneLine(text: string, maxChars = 300): string {
  const flat = text.replace(/\s+/g, ' ').replace(/\|/g, '\\|').trim();
  return flat.length > maxChars ? `${flat.slice(0, maxChars)}…` : flat;
}

/** A results file and its path relative to the repository. */
export interface ResultsSource {
  file: ResultsFile;
  path: string;
}

function sourceLines(src: ResultsSource): string[] {
  const { file } = src;
  const m = file.machine;
  const st = file.settings;
  const labels = st.targets.map((t) => t.label);
  const base = labels[0] ?? '';
  const ok = file.results.filter((r) => r.status === RunStatus.ok);
  const noisy = ok.filter((r) => (r.otherPct ?? 0) > NOISY_OTHER_PCT || !r.quiet).length;
  return [
    `Generated by \`npm run bench\` on ${file.startedAt.slice(0, 10)} (${file.startedAt}); every run's numbers are in ` +
      `\`${src.path}\`.`,
    '',
    `- Machine: ${m.cpuModel}, ${m.cpus} cores, ${fmtSig(m.memTotalBytes / 1024 ** 3)} GiB RAM, ${m.os}, Linux ${m.kernel}`,
    `- Node ${m.node}; etcd ${m.etcdVersion}; client: ${m.tool}; etcd-ts ${m.etcdTsVersion} at ${m.etcdTsCommit}`,
    `- ${st.runs} ${st.runs === 1 ? 'run' : 'runs'} per scenario and server, each on a fresh server and data dir, ` +
      `alternating ${labels.join(', ')}; ` +
      `SCALE=${st.scale}`,
    labels.length < 2
      ? '- Medians over the runs.'
      : `- Medians over the runs. Ratio columns are ${labels
          .slice(1)
          .map((l) => `${l} / ${base}`)
          .join(', ')}: for ops/s higher is better (above 1: ${labels[1]} is faster); for latency, ` +
        'CPU per operation and memory lower is better (below 1: it uses less).',
    `- ${noisy} of ${ok.length} completed runs were noisy (another load above ${NOISY_OTHER_PCT}% of a core during ` +
      'the run, or the host was not quiet before it).',
    '',
  ];
}

/**
 * The body of the "Side by side with etcd" section: the main tables from `main` and the
 * 1-million-key table from `load` (often the same file; load_1m is opt-in, so it may come from
 * an earlier run), each with the context of its own results file.
 */
export function renderSection(main: ResultsSource | null, load: ResultsSource | null): string {
  const out: string[] = [];
  const mainScenarios = main?.file.settings.scenarios.filter((s) => s !== 'load_1m') ?? [];
  if (main !== null && mainScenarios.length > 0) {
    out.push(...sourceLines(main));
    out.push(
      'Throughput and latency (watch scenarios: ops/s = events received per second; watch_fanout has no ' +
        'latency, the tool times nothing there):',
      '',
      metricTable(main.file, mainScenarios, THROUGHPUT),
      '',
    );
    out.push('Server cost (CPU time of the server process per operation; peak RSS = VmHWM of that run):', '');
    out.push(metricTable(main.file, mainScenarios, COST), '');
    out.push(...notesBlock(main.file, mainScenarios));
  }
  if (load?.file.settings.scenarios.includes('load_1m')) {
    const sameFile = main !== null && main.path === load.path && mainScenarios.length > 0;
    if (main !== null && mainScenarios.length > 0) out.push('### 1 million keys', '');
    if (!sameFile) out.push(...sourceLines(load));
    const keys = load.file.results.find((r) => r.scenario === 'load_1m' && r.load !== null)?.load?.keys;
    out.push(
      `${keys === undefined ? 'load_1m' : `${fmtInt(keys)} keys`} loaded with ` +
        '`put --conns 10 --clients 100 --sequential-keys --val-size 256`, then a clean stop and a restart on the same data dir:',
      '',
      loadTable(load.file),
      '',
      ...notesBlock(load.file, ['load_1m']),
    );
  }
  return out.join('\n');
}

function notesBlock(file: ResultsFile, scenarios: readonly ScenarioName[]): string[] {
  const notes = problemNotes(file, scenarios);
  return notes.length === 0 ? [] : ['Not measured, with errors, or redone:', '', ...notes.map((n) => `- ${n}`), ''];
}

/**
 * Replaces the content under `heading` (up to the next heading of the same or a higher level)
 * with `body`, keeping every other section; appends the section when it is missing.
 */
export function replaceSection(doc: string, heading: string, body: string): string {
  const level = /^#+/.exec(heading)?.[0].length ?? 2;
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => l.trimEnd() === heading);
  const block = [heading, '', ...body.trimEnd().split('\n'), ''];
  if (start < 0) {
    const trimmed = doc.trimEnd();
    return `${trimmed}${trimmed === '' ? '' : '\n\n'}${block.join('\n')}`;
  }
  let end = lines.length;
  let inFence = false;
  for (let i = start + 1; i < lines.length; i++) {
    const l = lines[i] ?? '';
    if (l.startsWith('```')) inFence = !inFence;
    const h = inFence ? null : /^(#+) /.exec(l);
    if (h !== null && (h[1]?.length ?? 0) <= level) {
      end = i;
      break;
    }
  }
  const after = lines.slice(end);
  return [...lines.slice(0, start), ...block, ...after].join('\n').replace(/\n*$/, '\n');
}
