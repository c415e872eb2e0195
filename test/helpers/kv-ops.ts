/**
 * KV requests as values that can be sent to any member and answered as comparable plain data:
 * the shared part of the differential tests. An answer is either the response (plain, without
 * the top-level header's cluster id, member id and raft term) or the gRPC code and message.
 * The one thing etcd leaves unspecified in a KV answer, the order of keys that tie under a sort
 * target other than the key, is settled here: ties are put in key order.
 */
import { type Channel, GrpcCallError } from '../../src/client/channel.ts';
import {
  type CompactionRequest,
  type DeleteRangeRequest,
  type KeyValue,
  KVService,
  type PutRequest,
  type RangeRequest,
  RangeRequest_SortTarget,
  type RangeResponse,
  type TxnRequest,
  type TxnResponse,
} from '../../src/proto/index.ts';
import { type Plain, plainResponse, toPlain } from './normalize.ts';

/** Bytes of a string, one byte per character (so `\xff` is the byte 0xff). */
export function bytes(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

/** etcd's prefix range end: drop trailing 0xff bytes, then add one to the last byte; `\0` if nothing is left. */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return bytes('\x00');
}

export type KvOp =
  | { kind: 'put'; request: PutRequest }
  | { kind: 'range'; request: RangeRequest }
  | { kind: 'delete'; request: DeleteRangeRequest }
  | { kind: 'txn'; request: TxnRequest }
  | { kind: 'compact'; request: CompactionRequest };

export type Outcome = { ok: Plain } | { error: { code: number; details: string } };

export interface Answer {
  outcome: Outcome;
  /** The header revision of a successful answer. */
  revision: bigint | undefined;
}

function sortTargetOf(kv: KeyValue, target: RangeRequest_SortTarget): bigint | Uint8Array {
  switch (target) {
    case RangeRequest_SortTarget.VERSION:
      return kv.version;
    case RangeRequest_SortTarget.CREATE:
      return kv.createRevision;
    case RangeRequest_SortTarget.MOD:
      return kv.modRevision;
    default:
      return kv.value;
  }
}

function sameSortTarget(a: bigint | Uint8Array, b: bigint | Uint8Array): boolean {
  if (typeof a === 'bigint' || typeof b === 'bigint') return a === b;
  return Buffer.compare(a, b) === 0;
}

/** Puts keys that tie under a non-key sort target in key order, leaving the order between ties' groups as sent. */
export function orderTies(request: RangeRequest, response: RangeResponse): void {
  if (request.sortTarget === RangeRequest_SortTarget.KEY) return;
  const kvs = response.kvs;
  let start = 0;
  for (let i = 1; i <= kvs.length; i++) {
    if (
      i < kvs.length &&
      sameSortTarget(sortTargetOf(kvs[i]!, request.sortTarget), sortTargetOf(kvs[start]!, request.sortTarget))
    ) {
      continue;
    }
    const run = kvs.slice(start, i).sort((a, b) => Buffer.compare(a.key, b.key));
    kvs.splice(start, run.length, ...run);
    start = i;
  }
}

export function orderTxnTies(request: TxnRequest, response: TxnResponse): void {
  const ops = response.succeeded ? request.success : request.failure;
  response.responses.forEach((op, i) => {
    const sent = ops[i]?.request;
    if (op.response?.$case === 'responseRange' && sent?.$case === 'requestRange') {
      orderTies(sent.value, op.response.value);
    } else if (op.response?.$case === 'responseTxn' && sent?.$case === 'requestTxn') {
      orderTxnTies(sent.value, op.response.value);
    }
  });
}

export async function send(channel: Channel, op: KvOp, timeoutMs: number): Promise<Answer> {
  const options = { timeoutMs };
  try {
    let response: { header?: { revision: bigint } | undefined };
    switch (op.kind) {
      case 'put':
        response = await channel.unary(KVService.Put, op.request, options);
        break;
      case 'range': {
        const range = await channel.unary(KVService.Range, op.request, options);
        orderTies(op.request, range);
        response = range;
        break;
      }
      case 'delete':
        response = await channel.unary(KVService.DeleteRange, op.request, options);
        break;
      case 'txn': {
        const txn = await channel.unary(KVService.Txn, op.request, options);
        orderTxnTies(op.request, txn);
        response = txn;
        break;
      }
      case 'compact':
        response = await channel.unary(KVService.Compact, op.request, options);
        break;
    }
    return { outcome: { ok: plainResponse(response) }, revision: response.header?.revision };
  } catch (err) {
    if (!(err instanceof GrpcCallError)) throw err;
    return { outcome: { error: { code: err.code, details: err.details } }, revision: undefined };
  }
}

/** One line describing an op, for failure messages. */
export function describeOp(index: number, op: KvOp): string {
  return `#${index} ${op.kind} ${JSON.stringify(toPlain(op.request))}`;
}
