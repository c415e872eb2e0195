/**
 * Transactions: comparisons (`compare.value('k', '=', 'v')`), operations (`op.put('k', 'v')`)
 * and a builder that reads in order: `client.txn().if(...).then(...).else(...).commit()`.
 */
import {
  Compare_CompareResult,
  Compare_CompareTarget,
  type Compare as PbCompare,
  type RequestOp,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
} from '../proto/index.ts';
import { type Bytes, keyRange, type RangeOptions, toBuffer, toInt64 } from './bytes.ts';
import {
  type DeleteOptions,
  type DeleteResult,
  deleteRequest,
  deleteResult,
  type GetOptions,
  type GetResult,
  getResult,
  header,
  type PutOptions,
  type PutResult,
  putRequest,
  putResult,
  type ResponseHeader,
  rangeRequest,
} from './kv.ts';

/** etcd's limit on operations in one transaction (`--max-txn-ops`, 128 by default). */
export const TXN_OPS_DEFAULT_MAX = 128;

export type CompareOperator = '=' | '==' | '!=' | '>' | '<';

const RESULTS: Readonly<Record<CompareOperator, Compare_CompareResult>> = {
  '=': Compare_CompareResult.EQUAL,
  '==': Compare_CompareResult.EQUAL,
  '!=': Compare_CompareResult.NOT_EQUAL,
  '>': Compare_CompareResult.GREATER,
  '<': Compare_CompareResult.LESS,
};

/** One condition of a transaction. */
export interface Comparison {
  readonly compare: PbCompare;
}

function comparison(
  key: Bytes,
  operator: CompareOperator,
  target: Compare_CompareTarget,
  targetUnion: PbCompare['targetUnion'],
  range: RangeOptions | undefined,
): Comparison {
  const result = RESULTS[operator];
  if (result === undefined) throw new TypeError(`unknown comparison operator ${JSON.stringify(operator)}`);
  const r = keyRange(key, range);
  return { compare: { result, target, key: r.key, targetUnion, rangeEnd: r.rangeEnd } };
}

/** Conditions on a key (or, with range options, on every key of a range). */
export const compare = {
  value(key: Bytes, operator: CompareOperator, value: Bytes, range?: RangeOptions): Comparison {
    const v = toBuffer(value);
    return comparison(key, operator, Compare_CompareTarget.VALUE, { $case: 'value', value: v }, range);
  },
  /** 0 for a key that does not exist. */
  version(key: Bytes, operator: CompareOperator, version: number | bigint, range?: RangeOptions): Comparison {
    const v = toInt64(version, 'version');
    return comparison(key, operator, Compare_CompareTarget.VERSION, { $case: 'version', value: v }, range);
  },
  /** 0 for a key that does not exist. */
  createRevision(key: Bytes, operator: CompareOperator, revision: number | bigint, range?: RangeOptions): Comparison {
    const v = toInt64(revision, 'revision');
    return comparison(key, operator, Compare_CompareTarget.CREATE, { $case: 'createRevision', value: v }, range);
  },
  /** 0 for a key that does not exist. */
  modRevision(key: Bytes, operator: CompareOperator, revision: number | bigint, range?: RangeOptions): Comparison {
    const v = toInt64(revision, 'revision');
    return comparison(key, operator, Compare_CompareTarget.MOD, { $case: 'modRevision', value: v }, range);
  },
  /** 0 for a key without a lease. */
  lease(key: Bytes, operator: CompareOperator, lease: number | bigint, range?: RangeOptions): Comparison {
    const v = toInt64(lease, 'lease');
    return comparison(key, operator, Compare_CompareTarget.LEASE, { $case: 'lease', value: v }, range);
  },
} as const;

/** One operation of a transaction. */
export interface Operation {
  readonly request: RequestOp;
  /** The operation writes (put, delete, or a nested transaction that does). */
  readonly writes: boolean;
}

export const op = {
  get(key: Bytes, options?: GetOptions): Operation {
    return { request: { request: { $case: 'requestRange', value: rangeRequest(key, options) } }, writes: false };
  },
  put(key: Bytes, value: Bytes, options?: PutOptions): Operation {
    return { request: { request: { $case: 'requestPut', value: putRequest(key, value, options) } }, writes: true };
  },
  delete(key: Bytes, options?: DeleteOptions): Operation {
    return {
      request: { request: { $case: 'requestDeleteRange', value: deleteRequest(key, options) } },
      writes: true,
    };
  },
  /** A nested transaction (etcd 3.3 and later). */
  txn(conditions: readonly Comparison[], success: readonly Operation[], failure: readonly Operation[] = []): Operation {
    const request = txnRequest(conditions, success, failure);
    const writes = success.some((o) => o.writes) || failure.some((o) => o.writes);
    return { request: { request: { $case: 'requestTxn', value: request } }, writes };
  },
} as const;

export function txnRequest(
  conditions: readonly Comparison[],
  success: readonly Operation[],
  failure: readonly Operation[],
): TxnRequest {
  return {
    compare: conditions.map((c) => c.compare),
    success: success.map((o) => o.request),
    failure: failure.map((o) => o.request),
  };
}

export type OpResult =
  | ({ type: 'get' } & GetResult)
  | ({ type: 'put' } & PutResult)
  | ({ type: 'delete' } & DeleteResult)
  | ({ type: 'txn' } & TxnResult);

export interface TxnResult {
  header: ResponseHeader;
  /** Every comparison held: the `then` operations ran; otherwise the `else` ones. */
  succeeded: boolean;
  /** One result per operation that ran, in order. */
  responses: OpResult[];
}

function opResult(r: ResponseOp): OpResult {
  const response = r.response;
  switch (response?.$case) {
    case 'responseRange':
      return { type: 'get', ...getResult(response.value) };
    case 'responsePut':
      return { type: 'put', ...putResult(response.value) };
    case 'responseDeleteRange':
      return { type: 'delete', ...deleteResult(response.value) };
    case 'responseTxn':
      return { type: 'txn', ...txnResult(response.value) };
    default:
      throw new TypeError('transaction response without an operation result');
  }
}

export function txnResult(r: TxnResponse): TxnResult {
  return { header: header(r.header), succeeded: r.succeeded, responses: r.responses.map(opResult) };
}

/** How a builder commits: the request, and whether it only reads (safe to retry). */
export type TxnCommitter = (request: TxnRequest, readOnly: boolean) => Promise<TxnResponse>;

const Stage = { IF: 0, THEN: 1, ELSE: 2 } as const;
type Stage = (typeof Stage)[keyof typeof Stage];

/** `txn().if(...).then(...).else(...).commit()`; each part is optional, in that order. */
export class Txn {
  private readonly committer: TxnCommitter;
  private readonly conditions: Comparison[] = [];
  private readonly success: Operation[] = [];
  private readonly failure: Operation[] = [];
  private stage: Stage = Stage.IF;
  private committed = false;

  constructor(committer: TxnCommitter) {
    this.committer = committer;
  }

  if(...conditions: Comparison[]): this {
    this.advance(Stage.IF, 'if');
    this.conditions.push(...conditions);
    return this;
  }

  // biome-ignore lint/suspicious/noThenProperty: then() is the transaction's success branch, as in etcd's clients.
  then(...operations: Operation[]): this {
    // A builder with a then() method looks like a promise to `await`: refuse clearly.
    const [first, second] = operations as unknown[];
    if (typeof first === 'function') {
      const error = new TypeError('a Txn is not a promise: finish it with commit()');
      if (typeof second === 'function') second(error);
      return this;
    }
    this.advance(Stage.THEN, 'then');
    this.success.push(...operations);
    return this;
  }

  else(...operations: Operation[]): this {
    this.advance(Stage.ELSE, 'else');
    this.failure.push(...operations);
    return this;
  }

  /** The request this builder would send. */
  request(): TxnRequest {
    return txnRequest(this.conditions, this.success, this.failure);
  }

  async commit(): Promise<TxnResult> {
    if (this.committed) throw new TypeError('a transaction is committed once');
    this.committed = true;
    const readOnly = !this.success.some((o) => o.writes) && !this.failure.some((o) => o.writes);
    return txnResult(await this.committer(this.request(), readOnly));
  }

  private advance(to: Stage, name: string): void {
    if (this.committed) throw new TypeError(`${name}() after commit()`);
    if (to < this.stage)
      throw new TypeError(`${name}() must come before ${this.stage === Stage.ELSE ? 'else' : 'then'}()`);
    this.stage = to;
  }
}
