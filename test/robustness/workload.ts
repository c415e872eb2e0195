/**
 * A concurrent KV workload against a cluster while faults are injected, recording a history for
 * the linearizability checker, and the checks on revisions that go with it.
 *
 * Clients run put, get (linearizable), delete and compare-and-swap on a few keys, each request
 * to a member picked at random, each with a deadline. Every operation records its invocation and
 * completion times; a write that failed after it may have reached a member is recorded with an
 * unknown outcome (it may take effect later, or never); a request that never reached a member
 * or that a member refused with `etcdserver: no leader`, and every failed read, is left out. Meanwhile a fault loop kills (SIGKILL) and restarts
 * members, pauses them (SIGSTOP/SIGCONT) and, in a proxied cluster, cuts a member off its peers,
 * one fault at a time so that a quorum remains. At the end the faults stop, the cluster heals,
 * and every key is read on every member.
 */
import { performance } from 'node:perf_hooks';
import { GrpcCallError } from '../../src/client/channel.ts';
import {
  Compare_CompareResult,
  Compare_CompareTarget,
  DeleteRangeRequest,
  KVService,
  PutRequest,
  RangeRequest,
  TxnRequest,
} from '../../src/proto/index.ts';
import { type Cluster, type ClusterMember, sleep } from '../helpers/cluster.ts';
import type { KvInput, KvOperation, KvOutput } from './kv-model.ts';

export const FaultKind = {
  KILL: 'kill',
  KILL_LEADER: 'kill-leader',
  PAUSE: 'pause',
  PAUSE_LEADER: 'pause-leader',
  ISOLATE: 'isolate',
  ISOLATE_LEADER: 'isolate-leader',
} as const;
export type FaultKind = (typeof FaultKind)[keyof typeof FaultKind];

export interface WorkloadOptions {
  clients: number;
  keys: number;
  /** How long clients run while faults are injected. */
  durationMs: number;
  /** Deadline of each request. */
  requestTimeoutMs: number;
  /** Faults to choose from (empty: none). ISOLATE* need a proxied cluster. */
  faults: readonly FaultKind[];
  /** Pause between the end of one fault and the start of the next, [min, max) ms. */
  faultGapMs: readonly [number, number];
  /** How long a fault lasts, [min, max) ms. */
  faultLengthMs: readonly [number, number];
  seed: number;
  /** Progress lines (faults as they happen). */
  log?: (line: string) => void;
}

/** An operation as recorded: the checker's fields, plus what the revision checks need. */
export interface RecordedOperation extends KvOperation {
  /** The member the request went to. */
  member: string;
  /** The response header's revision (absent for an unknown outcome). */
  revision: bigint | undefined;
  /** A get that found the key: the key's mod revision. */
  modRevision: bigint | undefined;
  /** One of the reads of every key on every member after the faults. */
  final: boolean;
}

export interface WorkloadResult {
  operations: RecordedOperation[];
  /** Times (ms since the start) and descriptions of the faults injected. */
  faults: string[];
  /** Requests that failed before reaching any member, and reads that failed: not in the history. */
  dropped: number;
  /** Failed requests (recorded or not) by error message, most frequent first. */
  errors: [string, number][];
  /** performance.now() at the start: operation times are on that clock. */
  origin: number;
}

/** xorshift32: deterministic choices for a given seed (timing still varies between runs). */
export function seededRandom(seed: number): () => number {
  let x = seed >>> 0 || 0x2545f491;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const NO_LEADER = 'etcdserver: no leader';
/** A final read that fails (the cluster healed a moment ago) is tried again, up to this often. */
const FINAL_READ_ATTEMPTS = 3;

/** Runs the workload and the faults for `durationMs`, heals the cluster, reads every key everywhere. */
export async function runWorkload(cluster: Cluster, options: WorkloadOptions): Promise<WorkloadResult> {
  const random = seededRandom(options.seed);
  const origin = performance.now();
  const operations: RecordedOperation[] = [];
  const faults: string[] = [];
  const log = options.log ?? (() => {});
  let dropped = 0;
  const errors = new Map<string, number>();
  let stopping = false;
  const members = [...cluster.members];
  const keys = Array.from({ length: options.keys }, (_, i) => `lin/k${i}`);
  const between = ([min, max]: readonly [number, number]) => min + random() * (max - min);

  let final = false;
  const record = async (clientId: number, member: ClusterMember, input: KvInput): Promise<KvOutput | undefined> => {
    const call = performance.now();
    try {
      const { output, revision, modRevision } = await execute(member, input, options.requestTimeoutMs);
      operations.push({
        clientId,
        input,
        output,
        call,
        return: performance.now(),
        member: member.name,
        revision,
        modRevision,
        final,
      });
      return output;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      errors.set(message, (errors.get(message) ?? 0) + 1);
      // Certainly not applied: the request never reached a member, or a member refused it for
      // want of a leader, which etcd answers only before proposing.
      const notApplied = err instanceof GrpcCallError && (!err.sent || err.details === NO_LEADER);
      if (notApplied || input.kind === 'get') {
        dropped++;
        return undefined;
      }
      operations.push({
        clientId,
        input,
        output: { kind: 'unknown' },
        call,
        return: Number.POSITIVE_INFINITY,
        member: member.name,
        revision: undefined,
        modRevision: undefined,
        final,
      });
      return undefined;
    }
  };

  const client = async (clientId: number) => {
    const seen = new Map<string, string | null>();
    let seq = 0;
    while (!stopping) {
      const member = members[Math.floor(random() * members.length)]!;
      const key = keys[Math.floor(random() * keys.length)]!;
      const r = random();
      const value = `c${clientId}-${seq++}`;
      const input: KvInput =
        r < 0.4
          ? { kind: 'get', key }
          : r < 0.7
            ? { kind: 'put', key, value }
            : r < 0.8
              ? { kind: 'delete', key }
              : { kind: 'cas', key, expected: seen.get(key) ?? null, value };
      const output = await record(clientId, member, input);
      if (output?.kind === 'get') seen.set(key, output.value);
      else if (output?.kind === 'put' && input.kind === 'put') seen.set(key, input.value);
      else if (output?.kind === 'delete') seen.set(key, null);
      else if (output?.kind === 'cas' && output.succeeded && input.kind === 'cas') seen.set(key, input.value);
      if (output === undefined) await sleep(20); // the member is down or slow: do not spin
    }
  };

  const leaderOrAny = async (): Promise<ClusterMember> => {
    try {
      return await cluster.leader({ timeoutMs: 2_000 });
    } catch {
      return members[Math.floor(random() * members.length)]!;
    }
  };

  const faultLoop = async () => {
    if (options.faults.length === 0) return;
    while (!stopping) {
      await sleep(between(options.faultGapMs));
      if (stopping) break;
      const kind = options.faults[Math.floor(random() * options.faults.length)]!;
      const onLeader =
        kind === FaultKind.KILL_LEADER || kind === FaultKind.PAUSE_LEADER || kind === FaultKind.ISOLATE_LEADER;
      const target = onLeader ? await leaderOrAny() : members[Math.floor(random() * members.length)]!;
      const lengthMs = between(options.faultLengthMs);
      const line = `${((performance.now() - origin) / 1000).toFixed(1)}s ${kind} ${target.name} for ${Math.round(lengthMs)} ms`;
      faults.push(line);
      log(line);
      if (kind === FaultKind.KILL || kind === FaultKind.KILL_LEADER) {
        await target.kill('SIGKILL');
        await sleep(lengthMs);
        await target.restart();
      } else if (kind === FaultKind.PAUSE || kind === FaultKind.PAUSE_LEADER) {
        target.pause();
        await sleep(lengthMs);
        target.resume();
      } else {
        cluster.isolate(target);
        await sleep(lengthMs);
        cluster.heal();
      }
    }
  };

  const clients = Array.from({ length: options.clients }, (_, i) => client(i));
  const faulting = faultLoop();
  await sleep(options.durationMs);
  stopping = true;
  await Promise.all([...clients, faulting]);

  // Heal everything, let the members converge, then read every key on every member.
  cluster.heal();
  for (const m of members) {
    m.resume();
    if (!m.running) await m.restart();
  }
  await cluster.waitReady();
  await cluster.waitConverged(30_000);
  let finalClient = options.clients;
  final = true;
  for (const m of members) {
    for (const key of keys) {
      let output: KvOutput | undefined;
      for (let attempt = 0; attempt < FINAL_READ_ATTEMPTS && output === undefined; attempt++) {
        output = await record(finalClient, m, { kind: 'get', key });
      }
      if (output === undefined) throw new Error(`the final read of ${key} on ${m.name} failed`);
    }
    finalClient++;
  }
  const byCount = [...errors].sort((a, b) => b[1] - a[1]);
  return { operations, faults, dropped, errors: byCount, origin };
}

async function execute(
  member: ClusterMember,
  input: KvInput,
  timeoutMs: number,
): Promise<{ output: KvOutput; revision: bigint | undefined; modRevision: bigint | undefined }> {
  const channel = member.channel;
  const key = Buffer.from(input.key);
  switch (input.kind) {
    case 'put': {
      const r = await channel.unary(KVService.Put, PutRequest.fromPartial({ key, value: Buffer.from(input.value) }), {
        timeoutMs,
      });
      return { output: { kind: 'put' }, revision: r.header?.revision, modRevision: undefined };
    }
    case 'get': {
      const r = await channel.unary(KVService.Range, RangeRequest.fromPartial({ key }), { timeoutMs });
      const kv = r.kvs[0];
      const value = kv === undefined ? null : Buffer.from(kv.value).toString('utf8');
      return { output: { kind: 'get', value }, revision: r.header?.revision, modRevision: kv?.modRevision };
    }
    case 'delete': {
      const r = await channel.unary(KVService.DeleteRange, DeleteRangeRequest.fromPartial({ key }), { timeoutMs });
      return {
        output: { kind: 'delete', deleted: Number(r.deleted) },
        revision: r.header?.revision,
        modRevision: undefined,
      };
    }
    case 'cas': {
      const compare =
        input.expected === null
          ? {
              key,
              result: Compare_CompareResult.EQUAL,
              target: Compare_CompareTarget.VERSION,
              targetUnion: { $case: 'version' as const, value: 0n },
            }
          : {
              key,
              result: Compare_CompareResult.EQUAL,
              target: Compare_CompareTarget.VALUE,
              targetUnion: { $case: 'value' as const, value: Buffer.from(input.expected) },
            };
      const r = await channel.unary(
        KVService.Txn,
        TxnRequest.fromPartial({
          compare: [compare],
          success: [{ request: { $case: 'requestPut', value: { key, value: Buffer.from(input.value) } } }],
        }),
        { timeoutMs },
      );
      return { output: { kind: 'cas', succeeded: r.succeeded }, revision: r.header?.revision, modRevision: undefined };
    }
  }
}

/**
 * What etcd promises about revisions, beyond each key's linearizability:
 * - every acknowledged write (put, swap that succeeded, delete that deleted) has its own revision;
 * - a read of a value reports as its mod revision the revision of the write that wrote it (the
 *   same for every read of it), so no write was applied twice or at two revisions;
 * - revisions never go back in real time: an operation that starts after another completed
 *   sees at least that one's revision (a linearizable read included).
 * Returns the violations found (empty: none).
 */
export function checkRevisions(ops: readonly RecordedOperation[]): string[] {
  const problems: string[] = [];
  const known = ops.filter((o) => o.return !== Number.POSITIVE_INFINITY && o.revision !== undefined);
  const writeRevision = new Map<string, bigint>();
  const byRevision = new Map<bigint, RecordedOperation>();
  for (const o of known) {
    const wrote =
      o.input.kind === 'put' ||
      (o.output.kind === 'cas' && o.output.succeeded) ||
      (o.output.kind === 'delete' && o.output.deleted > 0);
    if (!wrote) continue;
    const other = byRevision.get(o.revision!);
    if (other !== undefined)
      problems.push(`two writes at revision ${o.revision}: ${describe(other)} and ${describe(o)}`);
    byRevision.set(o.revision!, o);
    if (o.input.kind === 'put' || o.input.kind === 'cas') writeRevision.set(o.input.value, o.revision!);
  }
  const readRevision = new Map<string, bigint>();
  for (const o of known) {
    if (o.output.kind !== 'get' || o.output.value === null || o.modRevision === undefined) continue;
    const value = o.output.value;
    const written = writeRevision.get(value);
    if (written !== undefined && written !== o.modRevision) {
      problems.push(`${describe(o)} reports mod revision ${o.modRevision}, the write was at ${written}`);
    }
    const earlier = readRevision.get(value);
    if (earlier !== undefined && earlier !== o.modRevision) {
      problems.push(`value ${value} read at mod revisions ${earlier} and ${o.modRevision}`);
    }
    readRevision.set(value, o.modRevision);
  }
  // Real time: walk operations by invocation; the highest revision of those completed before.
  const byReturn = [...known].sort((a, b) => a.return - b.return);
  const byCall = [...known].sort((a, b) => a.call - b.call);
  let i = 0;
  let highest: RecordedOperation | undefined;
  for (const o of byCall) {
    while (i < byReturn.length && byReturn[i]!.return < o.call) {
      const done = byReturn[i]!;
      if (highest === undefined || done.revision! > highest.revision!) highest = done;
      i++;
    }
    if (highest !== undefined && o.revision! < highest.revision!) {
      problems.push(
        `${describe(o)} saw revision ${o.revision} after ${describe(highest)} completed at ${highest.revision}`,
      );
    }
  }
  return problems.slice(0, 20);
}

/**
 * No acknowledged write lost, checked directly on the reads of every key on every member after
 * the faults: the members agree on each key's value and mod revision, and that value is at
 * least as new as the last acknowledged write of the key (or the key is gone and a delete of it
 * was at least attempted). Returns the violations found (empty: none).
 */
export function checkFinalReads(ops: readonly RecordedOperation[]): string[] {
  const problems: string[] = [];
  const finals = ops.filter((o) => o.final && o.output.kind === 'get');
  const keys = new Set(finals.map((o) => o.input.key));
  for (const key of keys) {
    const reads = finals.filter((o) => o.input.key === key);
    const seen = new Set(reads.map((o) => `${o.output.kind === 'get' ? o.output.value : ''}@${o.modRevision}`));
    if (seen.size !== 1) problems.push(`members disagree on ${key}: ${[...seen].join(', ')}`);
    const writes = ops.filter(
      (o) =>
        o.input.key === key &&
        o.revision !== undefined &&
        (o.input.kind === 'put' || (o.output.kind === 'cas' && o.output.succeeded)),
    );
    const last = writes.reduce<RecordedOperation | undefined>(
      (a, o) => (a === undefined || o.revision! > a.revision! ? o : a),
      undefined,
    );
    if (last === undefined) continue;
    for (const read of reads) {
      if (read.output.kind !== 'get') continue;
      if (read.output.value === null) {
        const deletes = ops.filter(
          (o) =>
            o.input.key === key &&
            o.input.kind === 'delete' &&
            (o.output.kind === 'unknown' ||
              (o.output.kind === 'delete' && o.output.deleted > 0 && o.revision! > last.revision!)),
        );
        if (deletes.length === 0)
          problems.push(`${key} is gone on ${read.member}, but ${describe(last)} was acknowledged and never deleted`);
      } else if (read.modRevision! < last.revision!) {
        problems.push(`${key} on ${read.member} is at mod revision ${read.modRevision}, older than ${describe(last)}`);
      }
    }
  }
  return problems;
}

function describe(o: RecordedOperation): string {
  const what =
    o.input.kind === 'put' || o.input.kind === 'cas'
      ? `${o.input.kind}(${o.input.key}, ${o.input.value})`
      : `${o.input.kind}(${o.input.key})`;
  return `c${o.clientId}@${o.member} ${what} [${o.call.toFixed(1)}, ${o.return.toFixed(1)}] rev ${o.revision}`;
}
