/**
 * The sequential model etcd's KV API must look like: a map of registers, checked one key at a
 * time (operations on different keys commute, so a history is linearizable if each key's
 * sub-history is). Per key: put, get, delete, and compare-and-swap (a txn comparing the value,
 * or the key's absence, and putting a new value when it matches).
 */
import type { Model, Operation } from './checker.ts';

export type KvInput =
  | { kind: 'put'; key: string; value: string }
  | { kind: 'get'; key: string }
  | { kind: 'delete'; key: string }
  /** `expected: null` compares the key's absence (version 0). */
  | { kind: 'cas'; key: string; expected: string | null; value: string };

export type KvOutput =
  | { kind: 'put' }
  | { kind: 'get'; value: string | null }
  | { kind: 'delete'; deleted: number }
  | { kind: 'cas'; succeeded: boolean }
  /** The request failed or timed out: it may or may not have taken effect. */
  | { kind: 'unknown' };

export type KvOperation = Operation<KvInput, KvOutput>;

/** A key's value; null when the key does not exist. */
export type KvState = string | null;

export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => null,

  step(state, input, output) {
    const unknown = output.kind === 'unknown';
    if (!unknown && output.kind !== input.kind) return { ok: false, state };
    switch (input.kind) {
      case 'put':
        return { ok: true, state: input.value };
      case 'get':
        // A read that failed changes nothing and says nothing; recorders leave them out.
        return { ok: unknown || (output.kind === 'get' && output.value === state), state };
      case 'delete': {
        const ok = unknown || (output.kind === 'delete' && output.deleted === (state === null ? 0 : 1));
        return { ok, state: null };
      }
      case 'cas': {
        const matches = state === input.expected;
        const ok = unknown || (output.kind === 'cas' && output.succeeded === matches);
        return { ok, state: matches ? input.value : state };
      }
    }
  },

  stateKey: (state) => (state === null ? '' : `=${state}`),

  partition(ops) {
    const byKey = new Map<string, KvOperation[]>();
    for (const op of ops) {
      const list = byKey.get(op.input.key);
      if (list === undefined) byKey.set(op.input.key, [op]);
      else list.push(op);
    }
    return [...byKey.keys()].sort().map((k) => byKey.get(k)!);
  },

  describe(input, output) {
    const result =
      output.kind === 'unknown'
        ? '?'
        : output.kind === 'get'
          ? JSON.stringify(output.value)
          : output.kind === 'delete'
            ? `deleted ${output.deleted}`
            : output.kind === 'cas'
              ? output.succeeded
                ? 'ok'
                : 'failed'
              : 'ok';
    switch (input.kind) {
      case 'put':
        return `put(${input.key}, ${JSON.stringify(input.value)}) -> ${result}`;
      case 'get':
        return `get(${input.key}) -> ${result}`;
      case 'delete':
        return `delete(${input.key}) -> ${result}`;
      case 'cas':
        return `cas(${input.key}, ${JSON.stringify(input.expected)} -> ${JSON.stringify(input.value)}) -> ${result}`;
    }
  },
};

/** Lines describing operations, for failure messages: client, times, operation and result. */
export function describeOperations(ops: readonly KvOperation[], origin = 0): string {
  return ops
    .map((op) => {
      const end = op.return === Number.POSITIVE_INFINITY ? 'inf' : (op.return - origin).toFixed(1);
      return `  c${op.clientId} [${(op.call - origin).toFixed(1)}, ${end}] ${kvModel.describe!(op.input, op.output)}`;
    })
    .join('\n');
}
