#!/usr/bin/env node
// Fails when src/proto/gen/ is not exactly what `npm run proto:gen` produces from the .proto
// files: regenerates into a temporary directory and compares every file byte for byte.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(fileURLToPath(new URL('..', import.meta.url)));
const committed = join(repoRoot, 'src', 'proto', 'gen');

function listFiles(dir) {
  const out = [];
  if (!existsSync(dir)) return out;
  const walk = (d) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.push(relative(dir, path).split(sep).join('/'));
    }
  };
  walk(dir);
  return out;
}

const tmp = mkdtempSync(join(tmpdir(), 'etcd-ts-proto-check-'));
let problems = [];
try {
  const fresh = join(tmp, 'gen');
  execFileSync(process.execPath, [join(repoRoot, 'scripts', 'proto-gen.mjs'), fresh], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const want = new Set(listFiles(fresh));
  const have = new Set(listFiles(committed));
  for (const file of want) {
    if (!have.has(file)) problems.push(`missing: src/proto/gen/${file}`);
    else if (!readFileSync(join(fresh, file)).equals(readFileSync(join(committed, file)))) {
      problems.push(`differs: src/proto/gen/${file}`);
    }
  }
  for (const file of have) if (!want.has(file)) problems.push(`not generated: src/proto/gen/${file}`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

if (problems.length > 0) {
  problems = problems.sort();
  console.error(`src/proto/gen/ is out of date with the .proto files (run npm run proto:gen):`);
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
console.log('src/proto/gen/ is up to date');
