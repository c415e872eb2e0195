/**
 * Hand-written codecs of the KV service's messages: the requests (decode and encode) and the
 * responses (encode), byte for byte and value for value what ts-proto's generated codecs in
 * `src/proto/gen/` give (test/perf/fast-codec.test.ts checks it on random messages). Each
 * decoder follows the generated one's loop exactly (same defaults, last value wins, unknown
 * fields skipped, a zero or end-group tag ends the message), so they agree on malformed input
 * too.
 */
import type {
  Compare,
  DeleteRangeRequest,
  DeleteRangeResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseHeader,
  ResponseOp,
  TxnRequest,
  TxnResponse,
} from '../gen/etcdserverpb/rpc.ts';
import type { KeyValue } from '../gen/mvccpb/kv.ts';
import {
  checkInt32,
  enterMessage,
  fillSlot,
  finishWriting,
  int32Size,
  leaveMessage,
  NO_BYTES,
  nextSlot,
  readBool,
  readBytes,
  reader,
  readInt32,
  readInt64,
  readUint32,
  readUint64,
  reserveSlot,
  sizeInt64,
  sizeUint64,
  skipField,
  startReading,
  startSizing,
  startWriting,
  varint32Size,
  writeByte,
  writeBytes,
  writeInt32,
  writeInt64,
  writeUint32,
} from './wire.ts';

// =============================================================================================
// Decoding

function endOfField(tag: number): boolean {
  return (tag & 7) === 4 || tag === 0;
}

/** The end of a nested message whose length prefix comes next. */
function nestedEnd(): number {
  const length = readUint32();
  return reader.pos + length;
}

function putRequestAt(end: number): PutRequest {
  enterMessage();
  const r = reader;
  const m: PutRequest = {
    key: NO_BYTES,
    value: NO_BYTES,
    lease: 0n,
    prevKv: false,
    ignoreValue: false,
    ignoreLease: false,
  };
  while (r.pos < end) {
    const tag = readUint32();
    switch (tag) {
      case 10:
        m.key = readBytes();
        continue;
      case 18:
        m.value = readBytes();
        continue;
      case 24:
        m.lease = readInt64();
        continue;
      case 32:
        m.prevKv = readBool();
        continue;
      case 40:
        m.ignoreValue = readBool();
        continue;
      case 48:
        m.ignoreLease = readBool();
        continue;
    }
    if (endOfField(tag)) break;
    skipField(tag & 7);
  }
  leaveMessage();
  return m;
}

function rangeRequestAt(end: number): RangeRequest {
  enterMessage();
  const r = reader;
  const m: RangeRequest = {
    key: NO_BYTES,
    rangeEnd: NO_BYTES,
    limit: 0n,
    revision: 0n,
    sortOrder: 0,
    sortTarget: 0,
    serializable: false,
    keysOnly: false,
    countOnly: false,
    minModRevision: 0n,
    maxModRevision: 0n,
    minCreateRevision: 0n,
    maxCreateRevision: 0n,
  };
  while (r.pos < end) {
    const tag = readUint32();
    switch (tag) {
      case 10:
        m.key = readBytes();
        continue;
      case 18:
        m.rangeEnd = readBytes();
        continue;
      case 24:
        m.limit = readInt64();
        continue;
      case 32:
        m.revision = readInt64();
        continue;
      case 40:
        m.sortOrder = readInt32() as RangeRequest['sortOrder'];
        continue;
      case 48:
        m.sortTarget = readInt32() as RangeRequest['sortTarget'];
        continue;
      case 56:
        m.serializable = readBool();
        continue;
      case 64:
        m.keysOnly = readBool();
        continue;
      case 72:
        m.countOnly = readBool();
        continue;
      case 80:
        m.minModRevision = readInt64();
        continue;
      case 88:
        m.maxModRevision = readInt64();
        continue;
      case 96:
        m.minCreateRevision = readInt64();
        continue;
      case 104:
        m.maxCreateRevision = readInt64();
        continue;
    }
    if (endOfField(tag)) break;
    skipField(tag & 7);
  }
  leaveMessage();
  return m;
}

function deleteRangeRequestAt(end: number): DeleteRangeRequest {
  enterMessage();
  const r = reader;
  const m: DeleteRangeRequest = { key: NO_BYTES, rangeEnd: NO_BYTES, prevKv: false };
  while (r.pos < end) {
    const tag = readUint32();
    switch (tag) {
      case 10:
        m.key = readBytes();
        continue;
      case 18:
        m.rangeEnd = readBytes();
        continue;
      case 24:
        m.prevKv = readBool();
        continue;
    }
    if (endOfField(tag)) break;
    skipField(tag & 7);
  }
  leaveMessage();
  return m;
}

function compareAt(end: number): Compare {
  enterMessage();
  const r = reader;
  const m: Compare = { result: 0, target: 0, key: NO_BYTES, targetUnion: undefined, rangeEnd: NO_BYTES };
  while (r.pos < end) {
    const tag = readUint32();
    switch (tag) {
      case 8:
        m.result = readInt32() as Compare['result'];
        continue;
      case 16:
        m.target = readInt32() as Compare['target'];
        continue;
      case 26:
        m.key = readBytes();
        continue;
      case 32:
        m.targetUnion = { $case: 'version', value: readInt64() };
        continue;
      case 40:
        m.targetUnion = { $case: 'createRevision', value: readInt64() };
        continue;
      case 48:
        m.targetUnion = { $case: 'modRevision', value: readInt64() };
        continue;
      case 58:
        m.targetUnion = { $case: 'value', value: readBytes() };
        continue;
      case 64:
        m.targetUnion = { $case: 'lease', value: readInt64() };
        continue;
      case 514:
        m.rangeEnd = readBytes();
        continue;
    }
    if (endOfField(tag)) break;
    skipField(tag & 7);
  }
  leaveMessage();
  return m;
}

function requestOpAt(end: number): RequestOp {
  enterMessage();
  const r = reader;
  const m: RequestOp = { request: undefined };
  while (r.pos < end) {
    const tag = readUint32();
    switch (tag) {
      case 10:
        m.request = { $case: 'requestRange', value: rangeRequestAt(nestedEnd()) };
        continue;
      case 18:
        m.request = { $case: 'requestPut', value: putRequestAt(nestedEnd()) };
        continue;
      case 26:
        m.request = { $case: 'requestDeleteRange', value: deleteRangeRequestAt(nestedEnd()) };
        continue;
      case 34:
        m.request = { $case: 'requestTxn', value: txnRequestAt(nestedEnd()) };
        continue;
    }
    if (endOfField(tag)) break;
    skipField(tag & 7);
  }
  leaveMessage();
  return m;
}

function txnRequestAt(end: number): TxnRequest {
  enterMessage();
  const r = reader;
  const m: TxnRequest = { compare: [], success: [], failure: [] };
  while (r.pos < end) {
    const tag = readUint32();
    switch (tag) {
      case 10:
        m.compare.push(compareAt(nestedEnd()));
        continue;
      case 18:
        m.success.push(requestOpAt(nestedEnd()));
        continue;
      case 26:
        m.failure.push(requestOpAt(nestedEnd()));
        continue;
    }
    if (endOfField(tag)) break;
    skipField(tag & 7);
  }
  leaveMessage();
  return m;
}

export function decodePutRequest(bytes: Uint8Array): PutRequest {
  startReading(bytes);
  return putRequestAt(bytes.length);
}

export function decodeRangeRequest(bytes: Uint8Array): RangeRequest {
  startReading(bytes);
  return rangeRequestAt(bytes.length);
}

export function decodeDeleteRangeRequest(bytes: Uint8Array): DeleteRangeRequest {
  startReading(bytes);
  return deleteRangeRequestAt(bytes.length);
}

export function decodeTxnRequest(bytes: Uint8Array): TxnRequest {
  startReading(bytes);
  return txnRequestAt(bytes.length);
}

/** ResponseHeader, for tests and clients: the server only encodes it. */
export function decodeResponseHeader(bytes: Uint8Array): ResponseHeader {
  startReading(bytes);
  enterMessage();
  const r = reader;
  const m: ResponseHeader = { clusterId: 0n, memberId: 0n, revision: 0n, raftTerm: 0n };
  while (r.pos < bytes.length) {
    const tag = readUint32();
    switch (tag) {
      case 8:
        m.clusterId = readUint64();
        continue;
      case 16:
        m.memberId = readUint64();
        continue;
      case 24:
        m.revision = readInt64();
        continue;
      case 32:
        m.raftTerm = readUint64();
        continue;
    }
    if (endOfField(tag)) break;
    skipField(tag & 7);
  }
  leaveMessage();
  return m;
}

// =============================================================================================
// Encoding: size pass (content length, nested lengths recorded) and write pass.

/** A nested message field: tag, length prefix, content. Returns its bytes in the parent. */
function nested(slot: number, contentBytes: number): number {
  fillSlot(slot, contentBytes);
  return 1 + varint32Size(contentBytes) + contentBytes;
}

function bytesField(tagBytes: number, value: Uint8Array): number {
  return value.length === 0 ? 0 : tagBytes + varint32Size(value.byteLength) + value.byteLength;
}

function int64Field(value: bigint, field: string): number {
  if (value === 0n) return 0;
  return 1 + sizeInt64(value, field);
}

function uint64Field(value: bigint, field: string): number {
  if (value === 0n) return 0;
  return 1 + sizeUint64(value, field);
}

function enumField(value: number): number {
  if (value === 0) return 0;
  checkInt32(value);
  return 1 + int32Size(value);
}

function boolField(value: boolean): number {
  return value !== false ? 2 : 0;
}

// ---- ResponseHeader ----

export function sizeResponseHeader(m: ResponseHeader): number {
  return (
    uint64Field(m.clusterId, 'clusterId') +
    uint64Field(m.memberId, 'memberId') +
    int64Field(m.revision, 'revision') +
    uint64Field(m.raftTerm, 'raftTerm')
  );
}

export function writeResponseHeader(m: ResponseHeader): void {
  if (m.clusterId !== 0n) {
    writeByte(8);
    writeInt64(m.clusterId);
  }
  if (m.memberId !== 0n) {
    writeByte(16);
    writeInt64(m.memberId);
  }
  if (m.revision !== 0n) {
    writeByte(24);
    writeInt64(m.revision);
  }
  if (m.raftTerm !== 0n) {
    writeByte(32);
    writeInt64(m.raftTerm);
  }
}

function sizeHeaderField(header: ResponseHeader | undefined): number {
  if (header === undefined) return 0;
  const slot = reserveSlot();
  return nested(slot, sizeResponseHeader(header));
}

function writeHeaderField(header: ResponseHeader | undefined): void {
  if (header === undefined) return;
  writeByte(10);
  writeUint32(nextSlot());
  writeResponseHeader(header);
}

// ---- KeyValue ----

export function sizeKeyValue(m: KeyValue): number {
  return (
    bytesField(1, m.key) +
    int64Field(m.createRevision, 'createRevision') +
    int64Field(m.modRevision, 'modRevision') +
    int64Field(m.version, 'version') +
    bytesField(1, m.value) +
    int64Field(m.lease, 'lease')
  );
}

export function writeKeyValue(m: KeyValue): void {
  if (m.key.length !== 0) {
    writeByte(10);
    writeBytes(m.key);
  }
  if (m.createRevision !== 0n) {
    writeByte(16);
    writeInt64(m.createRevision);
  }
  if (m.modRevision !== 0n) {
    writeByte(24);
    writeInt64(m.modRevision);
  }
  if (m.version !== 0n) {
    writeByte(32);
    writeInt64(m.version);
  }
  if (m.value.length !== 0) {
    writeByte(42);
    writeBytes(m.value);
  }
  if (m.lease !== 0n) {
    writeByte(48);
    writeInt64(m.lease);
  }
}

/** A KeyValue field (one-byte tag) or nothing when undefined. */
export function sizeKeyValueField(kv: KeyValue | undefined): number {
  if (kv === undefined) return 0;
  const slot = reserveSlot();
  return nested(slot, sizeKeyValue(kv));
}

export function writeKeyValueField(tag: number, kv: KeyValue | undefined): void {
  if (kv === undefined) return;
  writeByte(tag);
  writeUint32(nextSlot());
  writeKeyValue(kv);
}

function sizeKeyValues(kvs: readonly KeyValue[]): number {
  let total = 0;
  for (const kv of kvs) {
    const slot = reserveSlot();
    total += nested(slot, sizeKeyValue(kv));
  }
  return total;
}

function writeKeyValues(tag: number, kvs: readonly KeyValue[]): void {
  for (const kv of kvs) {
    writeByte(tag);
    writeUint32(nextSlot());
    writeKeyValue(kv);
  }
}

// ---- requests ----

function sizePutRequest(m: PutRequest): number {
  return (
    bytesField(1, m.key) +
    bytesField(1, m.value) +
    int64Field(m.lease, 'lease') +
    boolField(m.prevKv) +
    boolField(m.ignoreValue) +
    boolField(m.ignoreLease)
  );
}

function writePutRequest(m: PutRequest): void {
  if (m.key.length !== 0) {
    writeByte(10);
    writeBytes(m.key);
  }
  if (m.value.length !== 0) {
    writeByte(18);
    writeBytes(m.value);
  }
  if (m.lease !== 0n) {
    writeByte(24);
    writeInt64(m.lease);
  }
  if (m.prevKv !== false) writeBool(32, m.prevKv);
  if (m.ignoreValue !== false) writeBool(40, m.ignoreValue);
  if (m.ignoreLease !== false) writeBool(48, m.ignoreLease);
}

function writeBool(tag: number, value: boolean): void {
  writeByte(tag);
  writeByte(value ? 1 : 0);
}

function sizeRangeRequest(m: RangeRequest): number {
  return (
    bytesField(1, m.key) +
    bytesField(1, m.rangeEnd) +
    int64Field(m.limit, 'limit') +
    int64Field(m.revision, 'revision') +
    enumField(m.sortOrder) +
    enumField(m.sortTarget) +
    boolField(m.serializable) +
    boolField(m.keysOnly) +
    boolField(m.countOnly) +
    int64Field(m.minModRevision, 'minModRevision') +
    int64Field(m.maxModRevision, 'maxModRevision') +
    int64Field(m.minCreateRevision, 'minCreateRevision') +
    int64Field(m.maxCreateRevision, 'maxCreateRevision')
  );
}

function writeInt64Field(tag: number, value: bigint): void {
  if (value === 0n) return;
  writeByte(tag);
  writeInt64(value);
}

function writeRangeRequest(m: RangeRequest): void {
  if (m.key.length !== 0) {
    writeByte(10);
    writeBytes(m.key);
  }
  if (m.rangeEnd.length !== 0) {
    writeByte(18);
    writeBytes(m.rangeEnd);
  }
  writeInt64Field(24, m.limit);
  writeInt64Field(32, m.revision);
  if (m.sortOrder !== 0) {
    writeByte(40);
    writeInt32(m.sortOrder);
  }
  if (m.sortTarget !== 0) {
    writeByte(48);
    writeInt32(m.sortTarget);
  }
  if (m.serializable !== false) writeBool(56, m.serializable);
  if (m.keysOnly !== false) writeBool(64, m.keysOnly);
  if (m.countOnly !== false) writeBool(72, m.countOnly);
  writeInt64Field(80, m.minModRevision);
  writeInt64Field(88, m.maxModRevision);
  writeInt64Field(96, m.minCreateRevision);
  writeInt64Field(104, m.maxCreateRevision);
}

function sizeDeleteRangeRequest(m: DeleteRangeRequest): number {
  return bytesField(1, m.key) + bytesField(1, m.rangeEnd) + boolField(m.prevKv);
}

function writeDeleteRangeRequest(m: DeleteRangeRequest): void {
  if (m.key.length !== 0) {
    writeByte(10);
    writeBytes(m.key);
  }
  if (m.rangeEnd.length !== 0) {
    writeByte(18);
    writeBytes(m.rangeEnd);
  }
  if (m.prevKv !== false) writeBool(24, m.prevKv);
}

function sizeCompare(m: Compare): number {
  let total = enumField(m.result) + enumField(m.target) + bytesField(1, m.key);
  const u = m.targetUnion;
  switch (u?.$case) {
    case 'version':
    case 'createRevision':
    case 'modRevision':
    case 'lease':
      // A oneof member is written even when zero.
      total += 1 + sizeInt64(u.value, 'targetUnion.value');
      break;
    case 'value':
      total += 1 + varint32Size(u.value.byteLength) + u.value.byteLength;
      break;
  }
  // Field 64: a two-byte tag.
  if (m.rangeEnd.length !== 0) total += 2 + varint32Size(m.rangeEnd.byteLength) + m.rangeEnd.byteLength;
  return total;
}

const COMPARE_UNION_TAGS = { version: 32, createRevision: 40, modRevision: 48, lease: 64 } as const;

function writeCompare(m: Compare): void {
  if (m.result !== 0) {
    writeByte(8);
    writeInt32(m.result);
  }
  if (m.target !== 0) {
    writeByte(16);
    writeInt32(m.target);
  }
  if (m.key.length !== 0) {
    writeByte(26);
    writeBytes(m.key);
  }
  const u = m.targetUnion;
  switch (u?.$case) {
    case 'version':
    case 'createRevision':
    case 'modRevision':
    case 'lease':
      writeByte(COMPARE_UNION_TAGS[u.$case]);
      writeInt64(u.value);
      break;
    case 'value':
      writeByte(58);
      writeBytes(u.value);
      break;
  }
  if (m.rangeEnd.length !== 0) {
    writeUint32(514);
    writeBytes(m.rangeEnd);
  }
}

function sizeRequestOp(m: RequestOp): number {
  const req = m.request;
  switch (req?.$case) {
    case 'requestRange':
      return nested(reserveSlot(), sizeRangeRequest(req.value));
    case 'requestPut':
      return nested(reserveSlot(), sizePutRequest(req.value));
    case 'requestDeleteRange':
      return nested(reserveSlot(), sizeDeleteRangeRequest(req.value));
    case 'requestTxn':
      return nested(reserveSlot(), sizeTxnRequest(req.value));
    default:
      return 0;
  }
}

function writeRequestOp(m: RequestOp): void {
  const req = m.request;
  switch (req?.$case) {
    case 'requestRange':
      writeByte(10);
      writeUint32(nextSlot());
      writeRangeRequest(req.value);
      return;
    case 'requestPut':
      writeByte(18);
      writeUint32(nextSlot());
      writePutRequest(req.value);
      return;
    case 'requestDeleteRange':
      writeByte(26);
      writeUint32(nextSlot());
      writeDeleteRangeRequest(req.value);
      return;
    case 'requestTxn':
      writeByte(34);
      writeUint32(nextSlot());
      writeTxnRequest(req.value);
      return;
  }
}

function sizeTxnRequest(m: TxnRequest): number {
  let total = 0;
  for (const c of m.compare) {
    const slot = reserveSlot();
    total += nested(slot, sizeCompare(c));
  }
  for (const op of m.success) {
    const slot = reserveSlot();
    total += nested(slot, sizeRequestOp(op));
  }
  for (const op of m.failure) {
    const slot = reserveSlot();
    total += nested(slot, sizeRequestOp(op));
  }
  return total;
}

function writeTxnRequest(m: TxnRequest): void {
  for (const c of m.compare) {
    writeByte(10);
    writeUint32(nextSlot());
    writeCompare(c);
  }
  for (const op of m.success) {
    writeByte(18);
    writeUint32(nextSlot());
    writeRequestOp(op);
  }
  for (const op of m.failure) {
    writeByte(26);
    writeUint32(nextSlot());
    writeRequestOp(op);
  }
}

// ---- responses ----

function sizeRangeResponse(m: RangeResponse): number {
  return sizeHeaderField(m.header) + sizeKeyValues(m.kvs) + boolField(m.more) + int64Field(m.count, 'count');
}

function writeRangeResponse(m: RangeResponse): void {
  writeHeaderField(m.header);
  writeKeyValues(18, m.kvs);
  if (m.more !== false) writeBool(24, m.more);
  writeInt64Field(32, m.count);
}

function sizePutResponse(m: PutResponse): number {
  return sizeHeaderField(m.header) + sizeKeyValueField(m.prevKv);
}

function writePutResponse(m: PutResponse): void {
  writeHeaderField(m.header);
  writeKeyValueField(18, m.prevKv);
}

function sizeDeleteRangeResponse(m: DeleteRangeResponse): number {
  return sizeHeaderField(m.header) + int64Field(m.deleted, 'deleted') + sizeKeyValues(m.prevKvs);
}

function writeDeleteRangeResponse(m: DeleteRangeResponse): void {
  writeHeaderField(m.header);
  writeInt64Field(16, m.deleted);
  writeKeyValues(26, m.prevKvs);
}

function sizeResponseOp(m: ResponseOp): number {
  const res = m.response;
  switch (res?.$case) {
    case 'responseRange':
      return nested(reserveSlot(), sizeRangeResponse(res.value));
    case 'responsePut':
      return nested(reserveSlot(), sizePutResponse(res.value));
    case 'responseDeleteRange':
      return nested(reserveSlot(), sizeDeleteRangeResponse(res.value));
    case 'responseTxn':
      return nested(reserveSlot(), sizeTxnResponse(res.value));
    default:
      return 0;
  }
}

function writeResponseOp(m: ResponseOp): void {
  const res = m.response;
  switch (res?.$case) {
    case 'responseRange':
      writeByte(10);
      writeUint32(nextSlot());
      writeRangeResponse(res.value);
      return;
    case 'responsePut':
      writeByte(18);
      writeUint32(nextSlot());
      writePutResponse(res.value);
      return;
    case 'responseDeleteRange':
      writeByte(26);
      writeUint32(nextSlot());
      writeDeleteRangeResponse(res.value);
      return;
    case 'responseTxn':
      writeByte(34);
      writeUint32(nextSlot());
      writeTxnResponse(res.value);
      return;
  }
}

function sizeTxnResponse(m: TxnResponse): number {
  let total = sizeHeaderField(m.header) + boolField(m.succeeded);
  for (const op of m.responses) {
    const slot = reserveSlot();
    total += nested(slot, sizeResponseOp(op));
  }
  return total;
}

function writeTxnResponse(m: TxnResponse): void {
  writeHeaderField(m.header);
  if (m.succeeded !== false) writeBool(16, m.succeeded);
  for (const op of m.responses) {
    writeByte(26);
    writeUint32(nextSlot());
    writeResponseOp(op);
  }
}

// ---- entry points ----

/**
 * Encodes `message` with a size pass and a write pass into one buffer, `headroomBytes` left free
 * at its start (for a gRPC frame header: the message then needs no copy behind it).
 */
export function encodeWith<T>(
  size: (m: T) => number,
  write: (m: T) => void,
  message: T,
  headroomBytes: number,
): Buffer {
  startSizing();
  const bytes = size(message);
  const out = startWriting(headroomBytes, bytes);
  write(message);
  finishWriting(headroomBytes + bytes);
  return out;
}

export function encodePutRequest(m: PutRequest, headroomBytes = 0): Buffer {
  return encodeWith(sizePutRequest, writePutRequest, m, headroomBytes);
}

export function encodeRangeRequest(m: RangeRequest, headroomBytes = 0): Buffer {
  return encodeWith(sizeRangeRequest, writeRangeRequest, m, headroomBytes);
}

export function encodeDeleteRangeRequest(m: DeleteRangeRequest, headroomBytes = 0): Buffer {
  return encodeWith(sizeDeleteRangeRequest, writeDeleteRangeRequest, m, headroomBytes);
}

export function encodeTxnRequest(m: TxnRequest, headroomBytes = 0): Buffer {
  return encodeWith(sizeTxnRequest, writeTxnRequest, m, headroomBytes);
}

export function encodeResponseHeader(m: ResponseHeader, headroomBytes = 0): Buffer {
  return encodeWith(sizeResponseHeader, writeResponseHeader, m, headroomBytes);
}

export function encodeRangeResponse(m: RangeResponse, headroomBytes = 0): Buffer {
  return encodeWith(sizeRangeResponse, writeRangeResponse, m, headroomBytes);
}

export function encodePutResponse(m: PutResponse, headroomBytes = 0): Buffer {
  return encodeWith(sizePutResponse, writePutResponse, m, headroomBytes);
}

export function encodeDeleteRangeResponse(m: DeleteRangeResponse, headroomBytes = 0): Buffer {
  return encodeWith(sizeDeleteRangeResponse, writeDeleteRangeResponse, m, headroomBytes);
}

export function encodeTxnResponse(m: TxnResponse, headroomBytes = 0): Buffer {
  return encodeWith(sizeTxnResponse, writeTxnResponse, m, headroomBytes);
}
