#!/usr/bin/env node
// Generates the TypeScript codecs for the .proto files under src/proto/ into src/proto/gen/
// (or into the directory given as the first argument) with protoc and ts-proto.
//
//   npm run proto:gen              # regenerate src/proto/gen/
//   node scripts/proto-gen.mjs DIR # generate into DIR (used by proto:check)
//
// The output is reproducible: ts-proto must be exactly the version pinned in package.json,
// the files carry no versions, timestamps or absolute paths, and protoc only parses (its
// version does not reach the output).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(fileURLToPath(new URL('..', import.meta.url)));
const protoRoot = join(repoRoot, 'src', 'proto');
const defaultOut = join(protoRoot, 'gen');

// ts-proto options. Each one is a decision about the generated API:
const TS_PROTO_OPTIONS = [
  'forceLong=bigint', // int64/uint64 are bigint: lease, member and cluster ids round-trip exactly
  'esModuleInterop=true',
  'importSuffix=.ts', // relative imports carry .ts like the rest of the code base
  'enumsAsLiterals=true', // `as const` objects, no TypeScript enum
  'unrecognizedEnum=false', // no synthetic UNRECOGNIZED member; unknown numbers pass through
  'oneof=unions-value', // oneof fields are { $case, value } discriminated unions
  'snakeToCamel=keys', // TS keys in lowerCamelCase; JSON keys keep the proto names (as etcd's gateway)
  'protoJsonFormat=false', // toJSON/fromJSON use the proto field names, not lowerCamelCase
  'outputServices=generic-definitions', // service descriptors that src/proto/services.ts builds on
  'annotateFilesWithVersion=false', // reproducible: no tool versions in the output
  'exportCommonSymbols=false', // no per-file DeepPartial/protobufPackage exports, so src/proto/index.ts can export * from every file
];

function protoFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (name === 'gen') continue;
    if (statSync(path).isDirectory()) out.push(...protoFiles(path));
    else if (name.endsWith('.proto')) out.push(relative(protoRoot, path).split(sep).join('/'));
  }
  return out;
}

function checkPinnedVersion(pkg) {
  const wanted = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).devDependencies?.[pkg];
  const installed = JSON.parse(readFileSync(join(repoRoot, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  if (wanted === undefined || !/^\d+\.\d+\.\d+$/.test(wanted)) {
    throw new Error(`${pkg} must be pinned to an exact version in package.json devDependencies (found ${wanted})`);
  }
  if (installed !== wanted) {
    throw new Error(`${pkg} ${installed} is installed but package.json pins ${wanted}; run npm ci`);
  }
}

function main() {
  const outDir = resolve(process.argv[2] ?? defaultOut);
  checkPinnedVersion('ts-proto');
  const files = protoFiles(protoRoot);
  if (files.length === 0) throw new Error(`no .proto files under ${protoRoot}`);

  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const plugin = join(repoRoot, 'node_modules', '.bin', 'protoc-gen-ts_proto');
  execFileSync(
    'protoc',
    [
      `--plugin=protoc-gen-ts_proto=${plugin}`,
      `--ts_proto_out=${outDir}`,
      `--ts_proto_opt=${TS_PROTO_OPTIONS.join(',')}`,
      '--proto_path=.',
      ...files,
    ],
    { cwd: protoRoot, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  console.log(`generated ${files.length} .proto files into ${relative(repoRoot, outDir) || outDir}`);
}

main();
