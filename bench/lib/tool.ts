// etcd's benchmark tool (tools/benchmark of etcd 3.4.23): building it when it is missing,
// running it with a time limit, and running it several times in a row against the same servers.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseToolOutput, type ToolSummary } from './parse.ts';
import { readCpuSeconds } from './procfs.ts';

export const BUILD_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'build-benchmark.sh');

/** Captured stdout/stderr are cut to their last bytes beyond this (the tool prints little). */
export const OUTPUT_BYTES_MAX = 4 * 1024 * 1024;

export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Builds the tool into `toolPath` with bench/lib/build-benchmark.sh unless it is already there.
 * Throws if the build fails or leaves no executable.
 */
export function ensureBenchmarkTool(toolPath: string): void {
  if (isExecutable(toolPath)) return;
  console.error(`# ${toolPath} missing: building etcd's benchmark tool (apt-get + go build, a few minutes)`);
  const r = spawnSync('bash', [BUILD_SCRIPT], { stdio: 'inherit', env: { ...process.env, OUT: toolPath } });
  if (r.status !== 0) throw new Error(`${BUILD_SCRIPT} failed (exit ${r.status ?? r.signal})`);
  if (!isExecutable(toolPath)) throw new Error(`${BUILD_SCRIPT} succeeded but ${toolPath} is not executable`);
}

/** Tool processes still running (killed on SIGINT). */
export const liveTools = new Set<ChildProcess>();

export interface ToolRun {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  wallMs: number;
}

/** Runs the tool to completion, killing it (SIGKILL) after `timeoutMs`. Never rejects on a failed run. */
export function runTool(toolPath: string, args: string[], timeoutMs: number): Promise<ToolRun> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(toolPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    liveTools.add(child);
    const out = new Capture();
    const err = new Capture();
    child.stdout.on('data', (b: Buffer) => out.add(b));
    child.stderr.on('data', (b: Buffer) => err.add(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      liveTools.delete(child);
      resolve({ stdout: '', stderr: e.message, exitCode: null, signal: null, timedOut: false, wallMs: 0 });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      liveTools.delete(child);
      resolve({
        stdout: out.text(),
        stderr: err.text(),
        exitCode: code,
        signal,
        timedOut,
        wallMs: performance.now() - t0,
      });
    });
  });
}

/** Keeps the last OUTPUT_BYTES_MAX bytes of a stream. */
class Capture {
  #chunks: Buffer[] = [];
  #bytes = 0;

  add(b: Buffer): void {
    this.#chunks.push(b);
    this.#bytes += b.length;
    while (this.#bytes > OUTPUT_BYTES_MAX && this.#chunks.length > 1) {
      this.#bytes -= this.#chunks.shift()?.length ?? 0;
    }
  }

  text(): string {
    return Buffer.concat(this.#chunks).toString('utf8');
  }
}

/** What `runSegments` measured: the summary of each run of the tool, and the CPU of the given processes over all of them. */
export type SegmentedRun =
  | { ok: true; summaries: ToolSummary[]; cpuSeconds: number }
  | { ok: false; segment: number; run: ToolRun };

/**
 * Runs the tool `segments` times, one after another, with the same arguments, and reads the CPU
 * time of `pids` (the servers) before the first run and after the last. Stops at the first run
 * without a summary and returns it with its index (0-based).
 */
export async function runSegments(
  toolPath: string,
  args: string[],
  segments: number,
  pids: readonly number[],
  timeoutMs: number,
): Promise<SegmentedRun> {
  const cpuBefore = await Promise.all(pids.map((p) => readCpuSeconds(p)));
  const summaries: ToolSummary[] = [];
  for (let segment = 0; segment < segments; segment++) {
    const run = await runTool(toolPath, args, timeoutMs);
    const summary = parseToolOutput(run.stdout);
    if (summary === null) return { ok: false, segment, run };
    summaries.push(summary);
  }
  const cpuAfter = await Promise.all(pids.map((p) => readCpuSeconds(p)));
  return { ok: true, summaries, cpuSeconds: cpuAfter.reduce((sum, v, i) => sum + v - cpuBefore[i]!, 0) };
}
