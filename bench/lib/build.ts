// The compiled build a benchmark measures: `npm run build` into a directory of its own.

import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { relative } from 'node:path';

/**
 * Runs `npm run build` with its output in `outDir` (emptied first) and checks that it wrote
 * `entry` (a path inside it). dist/ is shared with whoever else builds in this tree; a rebuild
 * there in the middle of a benchmark would mix two versions in one measurement. Type errors
 * elsewhere in the tree do not stop tsc from emitting, so a build that exits non-zero but wrote
 * the entry is measured: the result says so, and so does a line on stderr.
 */
export function buildInto(repoRoot: string, outDir: string, entry: string): string {
  rmSync(outDir, { recursive: true, force: true });
  console.log(`# npm run build -- --outDir ${relative(repoRoot, outDir)}`);
  const r = spawnSync('npm', ['run', 'build', '--', '--outDir', outDir], {
    cwd: repoRoot,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (!existsSync(entry)) throw new Error(`npm run build (exit ${r.status ?? r.signal}) did not write ${entry}`);
  if (r.status === 0) return 'npm run build: ok';
  const note = `npm run build exited ${r.status ?? r.signal} (type errors); the JavaScript it emitted was measured`;
  console.error(`# ${note}`);
  return note;
}
