export { KvView } from './codec.ts';
export * from './errors.ts';
export { type HistoryBatch, readHistory } from './history.ts';
export type {
  DeleteResult,
  EventType,
  HashKVResult,
  HashResult,
  KeyValue,
  MvccEvent,
  RangeOptions,
  RangeResult,
  TxnResult,
} from './kv.ts';
export {
  DEFAULT_COMPACTION_BATCH_LIMIT,
  DEFAULT_COMPACTION_SLEEP_INTERVAL_MS,
  type KnownRevision,
  MvccStore,
  type MvccStoreOptions,
  type StoredKvVisitor,
  WriteTxn,
} from './store.ts';
