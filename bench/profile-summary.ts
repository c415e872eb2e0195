// Summarises a V8 CPU profile (`node --cpu-prof`, a .cpuprofile file): the share of idle time,
// garbage collection and native code, the functions with the most self time, and self time
// grouped by source file (this project's files by path, dependencies by package, Node's
// internals by module). See bench/README.md ("Performance work").
//
//   node --import tsx bench/profile-summary.ts FILE.cpuprofile [--top 30]

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  /** Self time by function (`name file:line`), largest first. */
  functions: { name: string; ms: number }[];
  /** Self time by source group, largest first. */
  groups: { name: string; ms: number }[];
}

/** Where a frame's code lives: `(idle)`, `(gc)`, `src/api/grpc/call.ts`, `node:internal/http2`, `pkg lmdb`... */
export function frameGroup(frame: CallFrame): string {
  const name = frame.functionName;
  if (name === '(idle)') return '(idle)';
  if (name === '(garbage collector)') return '(gc)';
  if (name === '(program)') return '(program)';
  if (name === '(root)') return '(root)';
  const url = frame.url;
  if (url === '') return '(native)';
  if (url.startsWith('node:')) return url;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    const pkg = rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
    if (pkg !== '.cache') return `pkg ${pkg}`;
  }
  const src = url.search(/\/(src|bin)\//);
  if (src >= 0) return url.slice(src + 1).replace(/\.js$/, '.ts');
  return url;
}

export function summarize(profile: CpuProfile): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    // The delta before sample i+1 is the time spent in sample i.
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
  }
  const fn = new Map<string, number>();
  const group = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const f = node.callFrame;
    const g = frameGroup(f);
    const file = g.startsWith('(') ? '' : ` ${g}:${f.lineNumber + 1}`;
    const key = `${f.functionName === '' ? '(anonymous)' : f.functionName}${file}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    group.set(g, (group.get(g) ?? 0) + us);
    total += us;
  }
  const sorted = (m: Map<string, number>) =>
    [...m].map(([name, us]) => ({ name, ms: us / 1000 })).sort((a, b) => b.ms - a.ms);
  return { totalMs: total / 1000, functions: sorted(fn), groups: sorted(group) };
}

export function renderSummary(s: ProfileSummary, top: number): string {
  const pct = (ms: number) => `${((ms / Math.max(s.totalMs, 1e-9)) * 100).toFixed(1)}%`.padStart(6);
  const lines = [`total ${s.totalMs.toFixed(0)} ms sampled`, '', 'self time by source:'];
  for (const g of s.groups.slice(0, top)) lines.push(`${pct(g.ms)} ${g.ms.toFixed(0).padStart(7)} ms  ${g.name}`);
  lines.push('', 'self time by function:');
  for (const f of s.functions.slice(0, top)) lines.push(`${pct(f.ms)} ${f.ms.toFixed(0).padStart(7)} ms  ${f.name}`);
  return lines.join('\n');
}

function main(): void {
  const { values, positionals } = parseArgs({ options: { top: { type: 'string' } }, allowPositionals: true });
  const top = Number(values.top ?? '30');
  if (positionals.length === 0) throw new Error('usage: profile-summary.ts FILE.cpuprofile [--top N]');
  for (const file of positionals) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    console.log(`# ${file}`);
    console.log(renderSummary(summarize(profile), top));
  }
}

if (process.argv[1] !== undefined && import.meta.url === `file://${resolve(process.argv[1])}`) {
  try {
    main();
  } catch (err) {
    console.error(`profile-summary: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
