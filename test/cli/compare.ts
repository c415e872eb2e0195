/**
 * The comparison harness of the CLI tests: the real etcdctl and etcdctl-ts run the same command
 * and must print the same bytes and exit with the same code.
 *
 * Reads run both tools against the same real etcd member (A). A write cannot run twice on one
 * server and give the same answer, so writes run the real etcdctl against A and etcdctl-ts
 * against a second member (B) started the same way, in lockstep: both members go through the
 * same history and answer with the same revisions. What legitimately differs between A and B is
 * replaced by placeholders before comparing: cluster and member ids, lease ids (in order of
 * creation), the members' URLs. Arguments may name these too: `{lease:1}` is the first lease's
 * hex id on each member, `{member:1}` the first added member's, `{endpoint}` the member's own.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClusterService, LeaseService, MaintenanceService } from '../../src/proto/index.ts';
import { Member, MemberKind } from '../helpers/member.ts';
import { type CliResult, type CliRunOptions, etcdctl, etcdctlTs } from './helpers.ts';

const CALL_TIMEOUT_MS = 5_000;
/** Longer than two backend batch intervals (etcd's and ours: 100 ms). */
const SETTLE_STEP_MS = 250;
const SETTLE_TIMEOUT_MS = 5_000;

/** A member and what identifies it in outputs. */
class Side {
  readonly member: Member;
  /** Text to replace -> placeholder, longest first when applied. */
  private readonly names = new Map<string, string>();
  readonly leases: bigint[] = [];
  readonly members: bigint[] = [];

  constructor(member: Member) {
    this.member = member;
  }

  async init(): Promise<void> {
    const status = await this.member.channel.unary(MaintenanceService.Status, {}, { timeoutMs: CALL_TIMEOUT_MS });
    this.addId(status.header!.clusterId, '<cluster>');
    this.addId(status.header!.memberId, '<member>');
    const list = await this.member.channel.unary(
      ClusterService.MemberList,
      { linearizable: false },
      {
        timeoutMs: CALL_TIMEOUT_MS,
      },
    );
    for (const m of list.members) if (!this.members.includes(m.ID)) this.members.push(m.ID);
  }

  private addId(id: bigint, placeholder: string): void {
    this.names.set(id.toString(), placeholder);
    this.names.set(`hex:${id.toString(16)}`, placeholder);
  }

  /** Learns leases and members created since the last look (in id order if several). */
  async refresh(): Promise<void> {
    const leases = await this.member.channel.unary(LeaseService.LeaseLeases, {}, { timeoutMs: CALL_TIMEOUT_MS });
    const newLeases = leases.leases.map((l) => l.ID).filter((id) => !this.leases.includes(id));
    for (const id of newLeases.sort((a, b) => (a < b ? -1 : 1))) {
      this.leases.push(id);
      this.addId(id, `<lease-${this.leases.length}>`);
    }
    const list = await this.member.channel.unary(
      ClusterService.MemberList,
      { linearizable: false },
      {
        timeoutMs: CALL_TIMEOUT_MS,
      },
    );
    const newMembers = list.members.map((m) => m.ID).filter((id) => !this.members.includes(id));
    for (const id of newMembers.sort((a, b) => (a < b ? -1 : 1))) {
      this.members.push(id);
      this.addId(id, `<member-${this.members.length - 1}>`);
    }
  }

  /**
   * Waits until the member's backend file has stopped growing: a write reaches the file one
   * backend batch interval (100 ms) after it is applied, and the two tools of a read would
   * otherwise see two sizes.
   */
  async settle(): Promise<void> {
    const size = async () =>
      (await this.member.channel.unary(MaintenanceService.Status, {}, { timeoutMs: CALL_TIMEOUT_MS })).dbSize;
    let last = await size();
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    for (;;) {
      await sleep(SETTLE_STEP_MS);
      const now = await size();
      if (now === last) return;
      if (Date.now() > deadline) throw new Error(`db size still changing after ${SETTLE_TIMEOUT_MS} ms`);
      last = now;
    }
  }

  /** Fills `{lease:N}`, `{member:N}`, `{endpoint}` in an argument. */
  resolve(arg: string): string {
    return arg
      .replaceAll('{endpoint}', this.member.endpoint)
      .replace(/\{lease:(\d+)\}/g, (_, n: string) => (this.leases[Number(n) - 1] ?? 0n).toString(16))
      .replace(/\{member:(\d+)\}/g, (_, n: string) => (this.members[Number(n)] ?? 0n).toString(16));
  }

  normalise(text: string): string {
    let out = text
      .replaceAll(this.member.clientUrl, '<client-url>')
      .replaceAll(this.member.peerUrl, '<peer-url>')
      .replaceAll(this.member.endpoint, '<endpoint>');
    const entries = [...this.names].sort((a, b) => b[0].length - a[0].length);
    for (const [text, placeholder] of entries) {
      if (text.startsWith('hex:')) {
        const hex = text.slice(4);
        out = out.replace(new RegExp(`(?<![0-9a-fA-F])[ 0]*${hex}(?![0-9a-fA-F])`, 'g'), placeholder);
      } else {
        out = out.replace(new RegExp(`(?<![0-9])${text}(?![0-9])`, 'g'), placeholder);
      }
    }
    return out;
  }
}

export interface StepOptions extends CliRunOptions {
  /** The exit code the real etcdctl must give (checks the test itself); default 0. */
  code?: number;
  /** More replacements for values that differ by nature (timings, remaining TTLs). */
  scrub?: (text: string) => string;
  /** Standard output is binary with ids inside: the caller compares it. */
  binary?: boolean;
}

export interface Outcome {
  ref: CliResult;
  ts: CliResult;
}

/** Drops etcdctl's zap warning lines and gives capnslog lines a fixed time. */
function cleanStderr(text: string): string {
  return text
    .split('\n')
    .filter((line) => !line.startsWith('{"level":'))
    .map((line) => line.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} /, '<time> '))
    .join('\n');
}

/** Real etcd members A and B, and the two tools run against them. */
export class Pair {
  readonly a: Side;
  readonly b: Side;

  private constructor(a: Member, b: Member) {
    this.a = new Side(a);
    this.b = new Side(b);
  }

  /** Two members of `kind` (the real etcd by default). */
  static async start(kind: MemberKind = MemberKind.ETCD): Promise<Pair> {
    const started = await Promise.allSettled([
      Member.start({ kind, name: 'cli' }),
      Member.start({ kind, name: 'cli' }),
    ]);
    const members = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failure = started.find((s) => s.status === 'rejected');
    if (failure !== undefined) {
      await Promise.all(members.map((m) => m.stop()));
      throw failure.reason;
    }
    const pair = new Pair(members[0]!, members[1]!);
    await Promise.all([pair.a.init(), pair.b.init()]);
    return pair;
  }

  async stop(): Promise<void> {
    await Promise.all([this.a.member.stop(), this.b.member.stop()]);
  }

  private args(side: Side, args: readonly string[], endpoint: boolean): string[] {
    const resolved = args.map((a) => side.resolve(a));
    return endpoint ? [`--endpoints=${side.member.endpoint}`, ...resolved] : resolved;
  }

  private check(label: string, outcome: Outcome, refSide: Side, tsSide: Side, options: StepOptions): Outcome {
    // etcdctl-ts speaks (and prints) etcd's API 3.5; etcdctl 3.4 prints 3.4.
    const scrub = (t: string) =>
      (options.scrub ?? ((x: string) => x))(t.replace(/API VERSION:\n\t3\.\d+/g, 'API VERSION:\n\t<api>'));
    const view = (r: CliResult, side: Side) => ({
      code: r.code,
      stdout: options.binary === true ? '<binary>' : scrub(side.normalise(r.stdout.toString('utf8'))),
      stderr: scrub(side.normalise(cleanStderr(r.stderr.toString('utf8')))),
    });
    const ref = view(outcome.ref, refSide);
    assert.equal(ref.code, options.code ?? 0, `${label}: etcdctl exited ${ref.code}: ${ref.stderr}${ref.stdout}`);
    assert.deepEqual(view(outcome.ts, tsSide), ref, `${label}: etcdctl-ts and etcdctl differ`);
    return outcome;
  }

  /** A read: both tools against A. `--endpoints` is added unless `noEndpoint`. */
  async read(args: readonly string[], options: StepOptions & { noEndpoint?: boolean } = {}): Promise<Outcome> {
    const full = this.args(this.a, args, options.noEndpoint !== true);
    const env = options.env === undefined ? undefined : this.resolveEnv(this.a, options.env);
    const runOptions = { ...options, ...(env === undefined ? {} : { env }) };
    const [ref, ts] = await Promise.all([etcdctl(full, runOptions), etcdctlTs(full, runOptions)]);
    return this.check(`read ${args.join(' ')}`, { ref, ts }, this.a, this.a, options);
  }

  /** A write: the real etcdctl against A, etcdctl-ts against B. */
  async write(args: readonly string[], options: StepOptions = {}): Promise<Outcome> {
    const refEnv = options.env === undefined ? undefined : this.resolveEnv(this.a, options.env);
    const tsEnv = options.env === undefined ? undefined : this.resolveEnv(this.b, options.env);
    const [ref, ts] = await Promise.all([
      etcdctl(this.args(this.a, args, true), { ...options, ...(refEnv === undefined ? {} : { env: refEnv }) }),
      etcdctlTs(this.args(this.b, args, true), { ...options, ...(tsEnv === undefined ? {} : { env: tsEnv }) }),
    ]);
    await Promise.all([this.a.refresh(), this.b.refresh()]);
    return this.check(`write ${args.join(' ')}`, { ref, ts }, this.a, this.b, options);
  }

  private resolveEnv(side: Side, env: Record<string, string>): Record<string, string> {
    return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, side.resolve(v)]));
  }
}
