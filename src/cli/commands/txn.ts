/**
 * `txn [options]` (etcdctl's txn_command.go): reads comparisons, then the operations run on
 * success, then those run on failure, from standard input; each part ends with an empty line.
 *
 *   value("k") = "v"          version("k") > "0"     create("k") = "5"     mod("k") < "9"
 *   put k v                   get k --prefix         del k
 *
 * One deliberate difference: a single-quoted operation argument ('a b') loses its quotes as
 * the syntax means; etcdctl 3.4 cuts it at a wrong length.
 */
import {
  type Compare,
  Compare_CompareResult,
  Compare_CompareTarget,
  KVService,
  type RequestOp,
} from '../../proto/index.ts';
import { CliExit, type CommandSpec, cobraDefaultUsage, ExitCode, flag } from '../command.ts';
import { FlagError, FlagSet, FlagType } from '../flags.ts';
import { goQuote } from '../go-format.ts';
import type { Input, Output } from '../io.ts';
import { delCommand, delRequest } from './del.ts';
import { getCommand, getRequest } from './get.ts';
import { putCommand, putRequest } from './put.ts';
import { orExit, parseIntBase } from './util.ts';

/** Operations in one branch; etcd's default limit is 128 per transaction. */
const TXN_LINES_MAX = 10_000;

const RESULTS: Readonly<Record<string, Compare_CompareResult>> = {
  '=': Compare_CompareResult.EQUAL,
  '==': Compare_CompareResult.EQUAL,
  '!=': Compare_CompareResult.NOT_EQUAL,
  '>': Compare_CompareResult.GREATER,
  '<': Compare_CompareResult.LESS,
};

/** strconv.Unquote of a double-quoted Go string; undefined when it is not valid. */
export function goUnquote(quoted: string): string | undefined {
  if (quoted.length < 2 || quoted[0] !== '"' || quoted[quoted.length - 1] !== '"') return undefined;
  const body = Buffer.from(quoted.slice(1, -1), 'utf8');
  const out: number[] = [];
  const simple: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '"': 34 };
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === 0x22 || c === 0x0a) return undefined;
    if (c !== 0x5c) {
      out.push(c);
      continue;
    }
    const e = String.fromCharCode(body[++i] ?? 0);
    const hexDigits = (n: number) => {
      const text = body.subarray(i + 1, i + 1 + n).toString('latin1');
      if (text.length !== n || !/^[0-9a-fA-F]+$/.test(text)) return undefined;
      i += n;
      return Number.parseInt(text, 16);
    };
    if (e in simple) out.push(simple[e]!);
    else if (e === 'x') {
      const v = hexDigits(2);
      if (v === undefined) return undefined;
      out.push(v);
    } else if (e === 'u' || e === 'U') {
      const v = hexDigits(e === 'u' ? 4 : 8);
      if (v === undefined || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return undefined;
      out.push(...Buffer.from(String.fromCodePoint(v), 'utf8'));
    } else if (/[0-7]/.test(e)) {
      const text = body.subarray(i, i + 3).toString('latin1');
      if (!/^[0-7]{3}$/.test(text)) return undefined;
      const v = Number.parseInt(text, 8);
      if (v > 255) return undefined;
      out.push(v);
      i += 2;
    } else return undefined;
  }
  return Buffer.from(out).toString('latin1');
}

/** fmt.Sscanf(text, "%q) %s %q", ...): the values read and the error that stopped it. */
function scanCompare(text: string): { values: string[]; error: string | undefined } {
  const values: string[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\r')) i++;
  };
  const quoted = (): string => {
    skipSpace();
    if (i >= text.length) throw new Error('unexpected EOF');
    const q = text[i]!;
    if (q === '`') {
      const end = text.indexOf('`', i + 1);
      if (end < 0) throw new Error('unexpected EOF');
      const v = text.slice(i + 1, end);
      i = end + 1;
      return v;
    }
    if (q !== '"') throw new Error('expected quoted string');
    let j = i + 1;
    for (;;) {
      if (j >= text.length) throw new Error('unexpected EOF');
      if (text[j] === '\\') j += 2;
      else if (text[j] === '"') break;
      else j++;
    }
    const raw = text.slice(i, j + 1);
    i = j + 1;
    const v = goUnquote(raw);
    if (v === undefined) throw new Error('invalid syntax');
    return Buffer.from(v, 'latin1').toString('utf8');
  };
  const token = (): string => {
    skipSpace();
    if (i >= text.length) throw new Error('unexpected EOF');
    const start = i;
    while (i < text.length && !/\s/.test(text[i]!)) i++;
    return text.slice(start, i);
  };
  const literal = (c: string) => {
    if (text[i] !== c) throw new Error('input does not match format');
    i++;
  };
  try {
    values.push(quoted());
    literal(')');
    skipSpace();
    values.push(token());
    skipSpace();
    values.push(quoted());
    return { values, error: undefined };
  } catch (err) {
    return { values, error: (err as Error).message };
  }
}

/** One comparison line (etcdctl's parseCompare). */
export function parseCompare(line: string): Compare {
  const paren = line.indexOf('(');
  if (paren < 0) throw new CliExit(ExitCode.INVALID_INPUT, `malformed comparison: ${line}`);
  const target = line.slice(0, paren);
  const { values, error } = scanCompare(line.slice(paren + 1));
  const [key = '', op = '', val = ''] = values;
  if (values.length !== 3) {
    throw new CliExit(
      ExitCode.INVALID_INPUT,
      `malformed comparison: ${line}; got ${target}(${goQuote(key)}) ${op} ${goQuote(val)}`,
    );
  }
  if (error !== undefined) throw new CliExit(ExitCode.INVALID_INPUT, `malformed comparison: ${line} (${error})`);
  const result = RESULTS[op];
  if (result === undefined)
    throw new CliExit(ExitCode.INVALID_INPUT, `malformed comparison: ${line} (unknown operator ${op})`);
  const invalid = () => new CliExit(ExitCode.INVALID_INPUT, `invalid txn compare request: ${line}`);
  const number = () => {
    const n = parseIntBase(val, 10);
    if ('error' in n) throw invalid();
    return n.value;
  };
  const base = { result, key: Buffer.from(key), rangeEnd: Buffer.alloc(0) };
  switch (target) {
    case 'ver':
    case 'version':
      return { ...base, target: Compare_CompareTarget.VERSION, targetUnion: { $case: 'version', value: number() } };
    case 'c':
    case 'create':
      return {
        ...base,
        target: Compare_CompareTarget.CREATE,
        targetUnion: { $case: 'createRevision', value: number() },
      };
    case 'm':
    case 'mod':
      return { ...base, target: Compare_CompareTarget.MOD, targetUnion: { $case: 'modRevision', value: number() } };
    case 'val':
    case 'value':
      return { ...base, target: Compare_CompareTarget.VALUE, targetUnion: { $case: 'value', value: Buffer.from(val) } };
    case 'lease':
      return { ...base, target: Compare_CompareTarget.LEASE, targetUnion: { $case: 'lease', value: number() } };
    default:
      throw new CliExit(ExitCode.INVALID_INPUT, `malformed comparison: ${line} (unknown target ${target})`);
  }
}

/** etcdctl's argify: words, "double-quoted" (Go escapes) and 'single-quoted' strings. */
export function argify(line: string): string[] {
  const words = line.match(/"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s]\S*[^'"\s]?/g) ?? [];
  return words.map((w) => {
    if (w.startsWith("'")) return w.slice(1, -1);
    if (w.startsWith('"')) {
      const v = goUnquote(w);
      if (v === undefined) throw new CliExit(ExitCode.INVALID_INPUT, 'invalid syntax');
      return Buffer.from(v, 'latin1').toString('utf8');
    }
    return w;
  });
}

/** One operation line (etcdctl's parseRequestUnion). */
export async function parseOperation(line: string, stdin: Input, stderr: Output): Promise<RequestOp> {
  const args = argify(line);
  if (args.length < 2) throw new CliExit(ExitCode.INVALID_INPUT, `invalid txn compare request: ${line}`);
  const [name, ...rest] = args;
  const spec = name === 'put' ? putCommand : name === 'get' ? getCommand : name === 'del' ? delCommand : undefined;
  if (spec === undefined) throw new CliExit(ExitCode.INVALID_INPUT, `invalid txn request: ${line}`);
  const specs = [...(spec.flags ?? []), flag('help', FlagType.BOOL, 'false', `help for ${name}`, 'h')];
  const flags = new FlagSet(specs);
  let positional: string[];
  try {
    positional = flags.parse(rest).positional;
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    // etcdctl parses the line with a cobra command of its own, which prints cobra's usage.
    stderr.write(cobraDefaultUsage(spec.use, specs));
    throw new CliExit(ExitCode.INVALID_INPUT, `invalid txn request: ${line}`);
  }
  if (name === 'put') return { request: { $case: 'requestPut', value: await putRequest(positional, flags, stdin) } };
  if (name === 'get') return { request: { $case: 'requestRange', value: getRequest(positional, flags) } };
  return { request: { $case: 'requestDeleteRange', value: delRequest(positional, flags) } };
}

/** Lines up to an empty one; an input that ends first is an error (EOF), as in etcdctl. */
async function readSection<T>(stdin: Input, parse: (line: string) => Promise<T> | T): Promise<T[]> {
  const out: T[] = [];
  for (;;) {
    const raw = await stdin.readLine();
    if (raw === undefined || !raw.endsWith('\n')) throw new CliExit(ExitCode.INVALID_INPUT, 'EOF');
    const line = raw.trim();
    if (line.length === 0) return out;
    if (out.length >= TXN_LINES_MAX) throw new CliExit(ExitCode.INVALID_INPUT, `more than ${TXN_LINES_MAX} lines`);
    out.push(await parse(line));
  }
}

export const txnCommand: CommandSpec = {
  use: 'txn [options]',
  short: 'Txn processes all the requests in one transaction',
  flags: [flag('interactive', FlagType.BOOL, 'false', 'Input transaction in interactive mode', 'i')],
  run: async (ctx) => {
    if (ctx.args.length !== 0) throw new CliExit(ExitCode.BAD_ARGS, 'txn command does not accept argument');
    const client = await ctx.client();
    const interactive = ctx.flags.bool('interactive');
    const prompt = (text: string) => {
      if (interactive) ctx.io.stdout.write(`${text}\n`);
    };
    prompt('compares:');
    const compare = await readSection(ctx.io.stdin, parseCompare);
    prompt('success requests (get, put, del):');
    const success = await readSection(ctx.io.stdin, (line) => parseOperation(line, ctx.io.stdin, ctx.io.stderr));
    prompt('failure requests (get, put, del):');
    const failure = await readSection(ctx.io.stdin, (line) => parseOperation(line, ctx.io.stdin, ctx.io.stderr));
    const readOnly = [...success, ...failure].every((op) => op.request?.$case === 'requestRange');
    const response = await orExit(() =>
      client.call(KVService.Txn, { compare, success, failure }, { idempotent: readOnly }),
    );
    ctx.printer().txn(response);
  },
};
