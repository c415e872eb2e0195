/**
 * The command tree (as cobra builds etcdctl's): each command has a `use` line, a short help,
 * flags of its own, flags it passes down (persistent), subcommands and a run function. Finding
 * the command a command line names, and printing its usage with etcdctl's help template.
 */
import type { Client } from '../client/index.ts';
import { type FlagSet, type FlagSpec, FlagType } from './flags.ts';
import { goQuote } from './go-format.ts';
import type { CliIo } from './io.ts';
import type { Printer } from './printers/printer.ts';
import { tabwrite } from './tabwriter.ts';

export const CLI_NAME = 'etcdctl';

/** etcdctl's exit codes (ctlv3/command/error.go). */
export const ExitCode = {
  SUCCESS: 0,
  ERROR: 1,
  BAD_CONNECTION: 2,
  INVALID_INPUT: 3,
  BAD_FEATURE: 4,
  INTERRUPTED: 5,
  IO: 6,
  BAD_ARGS: 128,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Ends the command: prints `Error: <message>` (unless no message) and exits with `code`. */
export class CliExit extends Error {
  override readonly name = 'CliExit';
  readonly code: number;
  readonly printed: boolean;

  constructor(code: number, message?: string) {
    super(message ?? '');
    this.code = code;
    this.printed = message === undefined;
  }
}

/** What a command's run function gets. */
export interface CommandContext {
  readonly command: Command;
  /** Positional arguments. */
  readonly args: readonly string[];
  /** Positional arguments before `--`; -1 without `--`. */
  readonly dashAt: number;
  /** The command line as given (after the program name), as `os.Args[1:]`. */
  readonly rawArgs: readonly string[];
  readonly flags: FlagSet;
  readonly io: CliIo;
  /** The client from the global flags and ETCDCTL_* variables (made once, closed after the command). */
  client(): Promise<Client>;
  /** A client of its own for `endpoints` (closed after the command). */
  clientFor(endpoints: readonly string[], options?: { withAuth?: boolean }): Promise<Client>;
  /** The endpoints of the global flags (after ETCDCTL_* variables). */
  endpoints(): string[];
  /** The printer chosen by --write-out and --hex (after ETCDCTL_* variables). */
  printer(): Printer;
  /** The command timeout (--command-timeout) in milliseconds. */
  commandTimeoutMs(): number;
  /** Resolves when the process is asked to stop (SIGINT, SIGTERM). */
  readonly interrupted: AbortSignal;
}

export interface CommandSpec {
  /** `get [options] <key> [range_end]`: the name, then the usage of its arguments. */
  readonly use: string;
  readonly short: string;
  readonly long?: string;
  readonly flags?: readonly FlagSpec[];
  readonly persistentFlags?: readonly FlagSpec[];
  readonly subcommands?: readonly CommandSpec[];
  readonly run?: (ctx: CommandContext) => Promise<void>;
  /** The command reacts to SIGINT/SIGTERM itself (releases a lock...); others end at once. */
  readonly handlesInterrupt?: boolean;
}

export class Command {
  readonly spec: CommandSpec;
  readonly parent: Command | undefined;
  readonly children: readonly Command[];

  constructor(spec: CommandSpec, parent?: Command) {
    this.spec = spec;
    this.parent = parent;
    this.children = [...(spec.subcommands ?? [])]
      .map((s) => new Command(s, this))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  get name(): string {
    return this.spec.use.split(' ')[0]!;
  }

  get runnable(): boolean {
    return this.spec.run !== undefined;
  }

  /** `etcdctl lease grant`. */
  get path(): string {
    return this.parent === undefined ? this.name : `${this.parent.path} ${this.name}`;
  }

  helpFlag(): FlagSpec {
    return { name: 'help', shorthand: 'h', type: FlagType.BOOL, defaultText: 'false', usage: `help for ${this.name}` };
  }

  /** Flags defined here (own and persistent) plus help. */
  localFlags(): FlagSpec[] {
    return sortFlags([...(this.spec.flags ?? []), ...(this.spec.persistentFlags ?? []), this.helpFlag()]);
  }

  /** Persistent flags of the ancestors. */
  inheritedFlags(): FlagSpec[] {
    const out: FlagSpec[] = [];
    for (let c = this.parent; c !== undefined; c = c.parent) out.push(...(c.spec.persistentFlags ?? []));
    return sortFlags(out);
  }

  allFlags(): FlagSpec[] {
    return [...this.localFlags(), ...this.inheritedFlags()];
  }

  /** The child named `word`, or the only child it is a prefix of (cobra's prefix matching). */
  child(word: string): Command | undefined {
    const exact = this.children.find((c) => c.name === word);
    if (exact !== undefined) return exact;
    const matches = this.children.filter((c) => c.name.startsWith(word));
    return matches.length === 1 ? matches[0] : undefined;
  }

  /** Every command under this one, depth first. */
  descendants(): Command[] {
    return this.children.flatMap((c) => [c, ...c.descendants()]);
  }

  /** The usage text (etcdctl's help template). */
  usage(version: string, apiVersion: string): string {
    const nameOf = (c: Command) => {
      const parts = [c.name];
      for (let p = c.parent; p !== undefined && p !== this && p.parent !== undefined; p = p.parent)
        parts.unshift(p.name);
      return parts.join(' ');
    };
    const rootRelative = (c: Command) => {
      const parts = [c.name];
      for (let p = c.parent; p?.parent !== undefined; p = p.parent) parts.unshift(p.name);
      return parts.join(' ');
    };
    let out = 'NAME:\n';
    out +=
      this.parent === undefined
        ? `\t${this.name} - ${this.spec.short}\n`
        : `\t${rootRelative(this)} - ${this.spec.short}\n`;
    out += `\nUSAGE:\n\t${this.useLine()}\n`;
    if (this.parent === undefined) out += `\nVERSION:\n\t${version}\n`;
    if (this.children.length > 0) {
      out += `\nAPI VERSION:\n\t${apiVersion}\n`;
      out += '\n\nCOMMANDS:\n';
      for (const c of this.descendants()) if (c.runnable) out += `\t${nameOf(c)}\t${c.spec.short}\n`;
    }
    if (this.spec.long !== undefined) {
      out += '\nDESCRIPTION:\n';
      for (const line of this.spec.long.replace(/^[\n\t ]+|[\n\t ]+$/g, '').split('\n')) out += `\t${line}\n`;
    }
    out += `\nOPTIONS:\n${flagUsages(this.localFlags())}`;
    const inherited = this.inheritedFlags();
    if (inherited.length > 0) out += `\nGLOBAL OPTIONS:\n${flagUsages(inherited)}`;
    out += '\n';
    return tabwrite(out);
  }

  useLine(): string {
    const line = this.parent === undefined ? this.spec.use : `${this.parent.path} ${this.spec.use}`;
    return line.includes('[flags]') ? line : `${line} [flags]`;
  }
}

function sortFlags(flags: FlagSpec[]): FlagSpec[] {
  return flags.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function flagUsages(flags: readonly FlagSpec[]): string {
  let out = '';
  for (const f of flags) {
    let line = f.shorthand !== undefined ? `  -${f.shorthand}, --${f.name}` : `      --${f.name}`;
    const bool = f.type === FlagType.BOOL;
    if (bool) line += '[';
    line += f.type === FlagType.STRING ? `=${goQuote(f.defaultText)}` : `=${f.defaultText}`;
    if (bool) line += ']';
    out += `${line}\t${f.usage}\n`;
  }
  return out;
}

/** pflag's type names in usage lines. */
const PFLAG_TYPE_NAMES: Readonly<Record<FlagType, string>> = {
  bool: '',
  string: 'string',
  int: 'int',
  int64: 'int',
  duration: 'duration',
  stringSlice: 'strings',
};
const ZERO_DEFAULTS: Readonly<Record<FlagType, string>> = {
  bool: 'false',
  string: '',
  int: '0',
  int64: '0',
  duration: '0s',
  stringSlice: '[]',
};

/**
 * cobra's default usage text (the commands etcdctl builds outside its tree use it: the
 * operations of `txn`): `Usage:` with the use line, then pflag's aligned flag list.
 */
export function cobraDefaultUsage(useLine: string, flags: readonly FlagSpec[]): string {
  const lines = sortFlags([...flags]).map((f) => {
    let head = f.shorthand !== undefined ? `  -${f.shorthand}, --${f.name}` : `      --${f.name}`;
    const typeName = PFLAG_TYPE_NAMES[f.type];
    if (typeName !== '') head += ` ${typeName}`;
    let usage = f.usage;
    if (f.defaultText !== ZERO_DEFAULTS[f.type]) {
      usage += f.type === FlagType.STRING ? ` (default ${goQuote(f.defaultText)})` : ` (default ${f.defaultText})`;
    }
    return { head, usage };
  });
  const width = Math.max(...lines.map((l) => l.head.length)) + 1;
  const list = lines.map((l) => `${l.head} ${' '.repeat(width - l.head.length)} ${l.usage}`.trimEnd()).join('\n');
  return `Usage:\n   ${useLine} [flags]\n\nFlags:\n${list}\n\n`;
}

/** A flag spec, briefly. */
export function flag(name: string, type: FlagType, defaultText: string, usage: string, shorthand?: string): FlagSpec {
  return shorthand === undefined ? { name, type, defaultText, usage } : { name, type, defaultText, usage, shorthand };
}
