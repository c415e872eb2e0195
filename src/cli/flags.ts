/**
 * Command-line flags as etcdctl parses them (spf13/pflag): `--name=value`, `--name value`,
 * `--bool`, `-w json`, `-wjson`, `-w=json`, `--` ending the flags, flags anywhere among the
 * arguments; typed values with pflag's error messages; a string slice is comma-separated and
 * the first use replaces the default while later uses append.
 */
import { formatDuration, parseDuration } from './go-format.ts';

export const FlagType = {
  BOOL: 'bool',
  STRING: 'string',
  INT: 'int',
  INT64: 'int64',
  DURATION: 'duration',
  STRING_SLICE: 'stringSlice',
} as const;
export type FlagType = (typeof FlagType)[keyof typeof FlagType];

export interface FlagSpec {
  readonly name: string;
  readonly shorthand?: string;
  readonly type: FlagType;
  /** The default as pflag prints it (`5s`, `[127.0.0.1:2379]`, `simple`, `false`). */
  readonly defaultText: string;
  readonly usage: string;
}

export type FlagValue = boolean | string | bigint | string[];

/** A parse failure with pflag's message (`unknown flag: --x`, `invalid argument ...`). */
export class FlagError extends Error {
  override readonly name = 'FlagError';
}

/** One flag's current value. */
class Flag {
  readonly spec: FlagSpec;
  value: FlagValue;
  changed = false;

  constructor(spec: FlagSpec) {
    this.spec = spec;
    this.value = parseValue(spec, spec.defaultText, undefined);
  }

  set(text: string): void {
    this.value = parseValue(this.spec, text, this.changed ? this.value : undefined);
    this.changed = true;
  }

  /** The value as pflag's `Value.String()` prints it. */
  text(): string {
    return valueText(this.spec.type, this.value);
  }
}

function valueText(type: FlagType, value: FlagValue): string {
  if (type === FlagType.STRING_SLICE) return `[${(value as string[]).join(',')}]`;
  if (type === FlagType.DURATION) return formatDuration(value as bigint);
  return String(value);
}

const TRUE_TEXTS = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE_TEXTS = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

function parseValue(spec: FlagSpec, text: string, previous: FlagValue | undefined): FlagValue {
  switch (spec.type) {
    case FlagType.BOOL:
      if (TRUE_TEXTS.has(text)) return true;
      if (FALSE_TEXTS.has(text)) return false;
      throw new Error(`strconv.ParseBool: parsing ${JSON.stringify(text)}: invalid syntax`);
    case FlagType.STRING:
      return text;
    case FlagType.INT:
    case FlagType.INT64:
      return parseGoInt(text);
    case FlagType.DURATION:
      return parseDuration(text);
    case FlagType.STRING_SLICE: {
      const items = text === '' ? [] : parseCsv(text);
      return previous === undefined ? items : [...(previous as string[]), ...items];
    }
  }
}

/** `strconv.ParseInt(text, 0, 64)`: decimal, 0x hex, 0o/0 octal, 0b binary, underscores between digits. */
export function parseGoInt(text: string): bigint {
  const syntax = () => new Error(`strconv.ParseInt: parsing ${JSON.stringify(text)}: invalid syntax`);
  let s = text;
  let negative = false;
  if (s.startsWith('+') || s.startsWith('-')) {
    negative = s[0] === '-';
    s = s.slice(1);
  }
  let digits: string;
  let prefix: string;
  if (/^0[xX]/.test(s)) [prefix, digits] = ['0x', s.slice(2)];
  else if (/^0[bB]/.test(s)) [prefix, digits] = ['0b', s.slice(2)];
  else if (/^0[oO]/.test(s)) [prefix, digits] = ['0o', s.slice(2)];
  else if (/^0\d/.test(s)) [prefix, digits] = ['0o', s.slice(1)];
  else [prefix, digits] = ['', s];
  if (prefix !== '' && digits.includes('_')) digits = digits.replace(/^_/, '');
  if (digits.length === 0 || /^_|_$|__/.test(digits)) throw syntax();
  const clean = digits.replaceAll('_', '');
  const valid = { '': /^\d+$/, '0x': /^[0-9a-fA-F]+$/, '0b': /^[01]+$/, '0o': /^[0-7]+$/ }[prefix];
  if (valid === undefined || !valid.test(clean)) throw syntax();
  let value = BigInt(prefix === '' ? clean : `${prefix}${clean}`);
  if (negative) value = -value;
  if (value < INT64_MIN || value > INT64_MAX) {
    throw new Error(`strconv.ParseInt: parsing ${JSON.stringify(text)}: value out of range`);
  }
  return value;
}

/** One CSV record (encoding/csv): fields separated by commas, double quotes around a field. */
function parseCsv(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q < 0) throw new Error(`parse error: extraneous or missing " in quoted-field`);
        field += text.slice(i, q);
        i = q + 1;
        if (text[i] === '"') {
          field += '"';
          i++;
          continue;
        }
        break;
      }
    } else {
      const comma = text.indexOf(',', i);
      field = comma < 0 ? text.slice(i) : text.slice(i, comma);
      i = comma < 0 ? text.length : comma;
    }
    out.push(field);
    if (i >= text.length) return out;
    if (text[i] !== ',') throw new Error(`parse error: extraneous or missing " in quoted-field`);
    i++;
  }
}

/** The flags one command accepts (its own and those inherited) and their values after parsing. */
export class FlagSet {
  private readonly byName = new Map<string, Flag>();
  private readonly byShorthand = new Map<string, Flag>();

  constructor(specs: readonly FlagSpec[]) {
    for (const spec of specs) {
      if (this.byName.has(spec.name)) continue;
      const flag = new Flag(spec);
      this.byName.set(spec.name, flag);
      if (spec.shorthand !== undefined) this.byShorthand.set(spec.shorthand, flag);
    }
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  isBool(name: string): boolean {
    return this.byName.get(name)?.spec.type === FlagType.BOOL;
  }

  isBoolShorthand(shorthand: string): boolean {
    return this.byShorthand.get(shorthand)?.spec.type === FlagType.BOOL;
  }

  /**
   * Parses `args` (flags interspersed with positional arguments) and returns the positional
   * ones; `dashAt` is how many positional arguments came before `--` (-1 without one).
   */
  parse(args: readonly string[]): { positional: string[]; dashAt: number } {
    const positional: string[] = [];
    let dashAt = -1;
    for (let i = 0; i < args.length; i++) {
      const arg = args[i]!;
      if (arg === '--') {
        dashAt = positional.length;
        positional.push(...args.slice(i + 1));
        break;
      }
      if (arg.startsWith('--') && arg.length > 2) {
        const eq = arg.indexOf('=');
        const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
        const flag = this.byName.get(name);
        if (flag === undefined) {
          if (name === 'help') throw new HelpRequested();
          throw new FlagError(`unknown flag: --${name}`);
        }
        let value: string;
        if (eq >= 0) value = arg.slice(eq + 1);
        else if (flag.spec.type === FlagType.BOOL) value = 'true';
        else if (i + 1 < args.length) value = args[++i]!;
        else throw new FlagError(`flag needs an argument: --${name}`);
        this.assign(flag, value, `--${name}`);
      } else if (arg.startsWith('-') && arg.length > 1 && arg !== '-') {
        i = this.parseShorthands(args, i);
      } else {
        positional.push(arg);
      }
    }
    return { positional, dashAt };
  }

  private parseShorthands(args: readonly string[], i: number): number {
    let rest = args[i]!.slice(1);
    while (rest.length > 0) {
      const c = rest[0]!;
      const flag = this.byShorthand.get(c);
      if (flag === undefined) {
        if (c === 'h') throw new HelpRequested();
        throw new FlagError(`unknown shorthand flag: '${c}' in -${rest}`);
      }
      let value: string;
      if (rest.length > 2 && rest[1] === '=') {
        value = rest.slice(2);
        rest = '';
      } else if (flag.spec.type === FlagType.BOOL) {
        value = 'true';
        rest = rest.slice(1);
      } else if (rest.length > 1) {
        value = rest.slice(1);
        rest = '';
      } else if (i + 1 < args.length) {
        value = args[++i]!;
        rest = '';
      } else {
        throw new FlagError(`flag needs an argument: '${c}' in -${c}`);
      }
      this.assign(flag, value, `-${c}, --${flag.spec.name}`);
    }
    return i;
  }

  private assign(flag: Flag, value: string, spelled: string): void {
    try {
      flag.set(value);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new FlagError(`invalid argument ${JSON.stringify(value)} for "${spelled}" flag: ${reason}`);
    }
  }

  /** Sets a flag from the environment (not counted as given on the command line). */
  setFromEnv(name: string, value: string, envName: string): void {
    const flag = this.byName.get(name);
    if (flag === undefined) return;
    const wasChanged = flag.changed;
    try {
      flag.set(value);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new FlagError(`invalid value ${JSON.stringify(value)} for ${envName}: ${reason}`);
    }
    flag.changed = wasChanged;
  }

  changed(name: string): boolean {
    return this.flag(name).changed;
  }

  bool(name: string): boolean {
    return this.flag(name).value as boolean;
  }

  string(name: string): string {
    return this.flag(name).value as string;
  }

  int(name: string): bigint {
    return this.flag(name).value as bigint;
  }

  /** Nanoseconds. */
  duration(name: string): bigint {
    return this.flag(name).value as bigint;
  }

  strings(name: string): string[] {
    return this.flag(name).value as string[];
  }

  /** Each flag's name and printed value, sorted by name (pflag's VisitAll order). */
  entries(names?: ReadonlySet<string>): Array<{ name: string; text: string }> {
    return [...this.byName.values()]
      .filter((f) => names === undefined || names.has(f.spec.name))
      .sort((a, b) => (a.spec.name < b.spec.name ? -1 : 1))
      .map((f) => ({ name: f.spec.name, text: f.text() }));
  }

  private flag(name: string): Flag {
    const flag = this.byName.get(name);
    if (flag === undefined) throw new Error(`no flag --${name}`);
    return flag;
  }
}

/** `-h` or `--help` was given. */
export class HelpRequested extends Error {
  override readonly name = 'HelpRequested';
}
