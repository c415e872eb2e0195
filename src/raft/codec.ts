// Binary codec for the Raft data model, in the protobuf wire format of etcd's raftpb
// (raft.proto, proto2): the same field numbers and wire types, so `protoc --decode raftpb.Message`
// reads what encodeMessage writes. Encoding sizes the record first and writes it into one
// Uint8Array; decoding walks the bytes with a cursor. No JSON, no intermediate objects.
//
// Field numbers (raftpb):
//   Entry            1 type (varint)  2 term  3 index  4 data (bytes)
//   HardState        1 term  2 vote  3 commit
//   ConfState        1 voters (repeated uint64)  2 learners (repeated uint64)
//                    3 voters_outgoing, 4 learners_next, 5 auto_leave: joint consensus, rejected
//   SnapshotMetadata 1 conf_state  2 index  3 term
//   Snapshot         1 data  2 metadata
//   Message          1 type  2 to  3 from  4 term  5 logTerm  6 index  7 entries (repeated)
//                    8 commit  9 snapshot  10 reject  11 rejectHint  12 context
//   ConfChange       1 id  2 type  3 node_id  4 context
//
// Like etcd (gogoproto non-nullable fields), scalar fields are always written, even when zero;
// bytes fields are written only when non-empty, the snapshot only when present. The decoder
// accepts any field order, packed or unpacked repeated ids, and skips unknown fields.

import { ErrDecode, ErrInvalidMessage } from './errors.ts';
import {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  EMPTY_BYTES,
  type Entry,
  EntryType,
  type HardState,
  isMessageType,
  type Message,
  type Snapshot,
} from './types.ts';

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

const TWO_POW_32 = 0x1_0000_0000;
const MAX_UINT64 = 0xffff_ffff_ffff_ffffn;
const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);
/** A uint64 varint above 2^53 is handled as its low 49 bits (7 groups of 7) and the rest. */
const LOW_GROUPS = 7;
const LOW_BITS_BIG = 49n;
const LOW_MASK_BIG = (1n << LOW_BITS_BIG) - 1n;
/** The largest value above the low 49 bits of a uint64: 15 bits. */
const MAX_HIGH = 2 ** 15 - 1;

// ---------------------------------------------------------------------------------------------
// Sizes

function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x20_0000) return 3;
  if (v < 0x1000_0000) return 4;
  if (v < 0x8_0000_0000) return 5;
  if (v < 0x400_0000_0000) return 6;
  if (v < 0x2_0000_0000_0000) return 7;
  return 8; // below 2^53 (checked by callers), so at most 8 bytes
}

function bigVarintSize(v: bigint): number {
  if (v <= MAX_SAFE_BIG) return varintSize(Number(v));
  // Above 2^53 the low 49 bits take 7 bytes, all with the continuation bit.
  return LOW_GROUPS + varintSize(Number(v >> LOW_BITS_BIG));
}

function bytesFieldSize(b: Uint8Array): number {
  return b.byteLength === 0 ? 0 : 1 + varintSize(b.byteLength) + b.byteLength;
}

/** The value of the 7-bit varint groups in buf[from, to), low group first (at most 7 groups: exact). */
function groupsValue(buf: Uint8Array, from: number, to: number): number {
  let value = 0;
  let mul = 1;
  for (let i = from; i < to; i++) {
    value += (buf[i]! & 0x7f) * mul;
    mul *= 0x80;
  }
  return value;
}

function checkNumber(v: number, field: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new ErrInvalidMessage(`${field} must be a non-negative safe integer`);
}

function checkId(v: bigint, field: string): void {
  if (typeof v !== 'bigint' || v < 0n || v > MAX_UINT64)
    throw new ErrInvalidMessage(`${field} must be a uint64 bigint`);
}

function entryBodySize(e: Entry): number {
  return 1 + varintSize(e.type) + 1 + varintSize(e.term) + 1 + varintSize(e.index) + bytesFieldSize(e.data);
}

/** The encoded size of an entry, as counted against `maxSizePerMsg`. */
export function entrySize(e: Entry): number {
  return entryBodySize(e);
}

function confStateBodySize(cs: ConfState): number {
  let n = 0;
  for (const id of cs.voters) n += 1 + bigVarintSize(id);
  for (const id of cs.learners) n += 1 + bigVarintSize(id);
  return n;
}

function snapshotMetadataBodySize(s: Snapshot): number {
  const cs = confStateBodySize(s.metadata.confState);
  return 1 + varintSize(cs) + cs + 1 + varintSize(s.metadata.index) + 1 + varintSize(s.metadata.term);
}

function snapshotBodySize(s: Snapshot): number {
  const md = snapshotMetadataBodySize(s);
  return bytesFieldSize(s.data) + 1 + varintSize(md) + md;
}

// ---------------------------------------------------------------------------------------------
// Writing: each function writes at `pos` and returns the position after what it wrote.

function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  while (v >= TWO_POW_32) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}

function writeBigVarint(buf: Uint8Array, pos: number, v: bigint): number {
  if (v <= MAX_SAFE_BIG) return writeVarint(buf, pos, Number(v));
  // Two BigInt operations, the rest on numbers: member ids are random 64-bit values, sent in
  // every message.
  let low = Number(v & LOW_MASK_BIG);
  for (let i = 0; i < LOW_GROUPS; i++) {
    buf[pos++] = (low % 0x80) | 0x80;
    low = Math.floor(low / 0x80);
  }
  return writeVarint(buf, pos, Number(v >> LOW_BITS_BIG));
}

function writeBytesField(buf: Uint8Array, pos: number, tag: number, b: Uint8Array): number {
  if (b.byteLength === 0) return pos;
  buf[pos++] = tag;
  pos = writeVarint(buf, pos, b.byteLength);
  buf.set(b, pos);
  return pos + b.byteLength;
}

function writeEntryBody(buf: Uint8Array, pos: number, e: Entry): number {
  buf[pos++] = 0x08;
  pos = writeVarint(buf, pos, e.type);
  buf[pos++] = 0x10;
  pos = writeVarint(buf, pos, e.term);
  buf[pos++] = 0x18;
  pos = writeVarint(buf, pos, e.index);
  return writeBytesField(buf, pos, 0x22, e.data);
}

function writeConfStateBody(buf: Uint8Array, pos: number, cs: ConfState): number {
  for (const id of cs.voters) {
    buf[pos++] = 0x08;
    pos = writeBigVarint(buf, pos, id);
  }
  for (const id of cs.learners) {
    buf[pos++] = 0x10;
    pos = writeBigVarint(buf, pos, id);
  }
  return pos;
}

function writeSnapshotBody(buf: Uint8Array, pos: number, s: Snapshot): number {
  pos = writeBytesField(buf, pos, 0x0a, s.data);
  buf[pos++] = 0x12;
  pos = writeVarint(buf, pos, snapshotMetadataBodySize(s));
  buf[pos++] = 0x0a;
  pos = writeVarint(buf, pos, confStateBodySize(s.metadata.confState));
  pos = writeConfStateBody(buf, pos, s.metadata.confState);
  buf[pos++] = 0x10;
  pos = writeVarint(buf, pos, s.metadata.index);
  buf[pos++] = 0x18;
  return writeVarint(buf, pos, s.metadata.term);
}

function checkEntry(e: Entry): void {
  checkNumber(e.term, 'entry term');
  checkNumber(e.index, 'entry index');
  if (e.type !== EntryType.Normal && e.type !== EntryType.ConfChange) {
    throw new ErrInvalidMessage(`unknown entry type ${e.type}`);
  }
  if (!(e.data instanceof Uint8Array)) throw new ErrInvalidMessage('entry data must be a Uint8Array');
}

function checkSnapshot(s: Snapshot): void {
  checkNumber(s.metadata.index, 'snapshot index');
  checkNumber(s.metadata.term, 'snapshot term');
  for (const id of s.metadata.confState.voters) checkId(id, 'voter id');
  for (const id of s.metadata.confState.learners) checkId(id, 'learner id');
  if (!(s.data instanceof Uint8Array)) throw new ErrInvalidMessage('snapshot data must be a Uint8Array');
}

// ---------------------------------------------------------------------------------------------
// Reading

class Reader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    readonly what: string,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  fail(detail: string): never {
    throw new ErrDecode(`${this.what}: ${detail} at byte ${this.pos}`);
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** A varint that must fit in a JavaScript number (terms, indexes, types, lengths). */
  varint(): number {
    const buf = this.buf;
    if (this.pos >= this.end) this.fail('truncated varint');
    let b = buf[this.pos++]!;
    if (b < 0x80) return b;
    let result = b & 0x7f;
    let mul = 0x80;
    for (let i = 1; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      b = buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (result > Number.MAX_SAFE_INTEGER) this.fail('integer larger than 2^53-1');
        return result;
      }
      mul *= 0x80;
    }
    return this.fail('varint longer than 10 bytes');
  }

  /** A full uint64 varint (member ids). */
  bigVarint(): bigint {
    const start = this.pos;
    const buf = this.buf;
    let n = 0;
    while (true) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = buf[this.pos++]!;
      n++;
      if (b < 0x80) break;
      if (n === 10) this.fail('varint longer than 10 bytes');
    }
    // The low 49 bits (7 groups) and what is above them, as numbers; BigInts only at the end.
    const lowEnd = Math.min(this.pos, start + LOW_GROUPS);
    const low = groupsValue(buf, start, lowEnd);
    if (lowEnd === this.pos) return BigInt(low);
    const high = groupsValue(buf, lowEnd, this.pos);
    if (high > MAX_HIGH) this.fail('integer larger than 2^64-1');
    return (BigInt(high) << LOW_BITS_BIG) | BigInt(low);
  }

  bool(): boolean {
    const v = this.varint();
    if (v > 1) this.fail(`bool out of range (${v})`);
    return v === 1;
  }

  /** The end offset of a length-delimited field whose length comes next. */
  lengthEnd(): number {
    const len = this.varint();
    const end = this.pos + len;
    if (end > this.end) this.fail(`length ${len} runs past the end`);
    return end;
  }

  bytes(): Uint8Array {
    const end = this.lengthEnd();
    const out = end === this.pos ? EMPTY_BYTES : this.buf.slice(this.pos, end);
    this.pos = end;
    return out;
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.bigVarint();
        return;
      case WIRE_FIXED64:
        this.pos += 8;
        break;
      case WIRE_BYTES:
        this.pos = this.lengthEnd();
        return;
      case WIRE_FIXED32:
        this.pos += 4;
        break;
      default:
        this.fail(`unsupported wire type ${wire}`);
    }
    if (this.pos > this.end) this.fail('truncated field');
  }

  expectWire(actual: number, expected: number, field: string): void {
    if (actual !== expected) this.fail(`field ${field} has wire type ${actual}, want ${expected}`);
  }
}

function readEntry(r: Reader, end: number): Entry {
  let type = 0;
  let term = 0;
  let index = 0;
  let data = EMPTY_BYTES;
  while (r.pos < end) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    switch (field) {
      case 1:
        r.expectWire(wire, WIRE_VARINT, 'Entry.type');
        type = r.varint();
        if (type !== EntryType.Normal && type !== EntryType.ConfChange) r.fail(`unsupported entry type ${type}`);
        break;
      case 2:
        r.expectWire(wire, WIRE_VARINT, 'Entry.term');
        term = r.varint();
        break;
      case 3:
        r.expectWire(wire, WIRE_VARINT, 'Entry.index');
        index = r.varint();
        break;
      case 4:
        r.expectWire(wire, WIRE_BYTES, 'Entry.data');
        data = r.bytes();
        break;
      default:
        r.skip(wire);
    }
  }
  if (r.pos !== end) r.fail('entry overruns its length');
  return { term, index, type: type as EntryType, data };
}

function readIdList(r: Reader, wire: number, out: bigint[], field: string): void {
  if (wire === WIRE_VARINT) {
    out.push(r.bigVarint());
    return;
  }
  r.expectWire(wire, WIRE_BYTES, field); // packed
  const end = r.lengthEnd();
  while (r.pos < end) out.push(r.bigVarint());
  if (r.pos !== end) r.fail(`${field} overruns its length`);
}

function readConfState(r: Reader, end: number): ConfState {
  const voters: bigint[] = [];
  const learners: bigint[] = [];
  while (r.pos < end) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    switch (field) {
      case 1:
        readIdList(r, wire, voters, 'ConfState.voters');
        break;
      case 2:
        readIdList(r, wire, learners, 'ConfState.learners');
        break;
      case 3:
      case 4: {
        const ids: bigint[] = [];
        readIdList(r, wire, ids, 'ConfState joint field');
        if (ids.length > 0) r.fail('joint configurations are not supported');
        break;
      }
      case 5:
        r.expectWire(wire, WIRE_VARINT, 'ConfState.auto_leave');
        if (r.bool()) r.fail('joint configurations are not supported');
        break;
      default:
        r.skip(wire);
    }
  }
  if (r.pos !== end) r.fail('conf state overruns its length');
  return { voters, learners };
}

function readSnapshot(r: Reader, end: number): Snapshot {
  let data = EMPTY_BYTES;
  let index = 0;
  let term = 0;
  let confState: ConfState = { voters: [], learners: [] };
  while (r.pos < end) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1) {
      r.expectWire(wire, WIRE_BYTES, 'Snapshot.data');
      data = r.bytes();
    } else if (field === 2) {
      r.expectWire(wire, WIRE_BYTES, 'Snapshot.metadata');
      const mdEnd = r.lengthEnd();
      while (r.pos < mdEnd) {
        const k = r.varint();
        const f = Math.floor(k / 8);
        const w = k & 7;
        if (f === 1) {
          r.expectWire(w, WIRE_BYTES, 'SnapshotMetadata.conf_state');
          confState = readConfState(r, r.lengthEnd());
        } else if (f === 2) {
          r.expectWire(w, WIRE_VARINT, 'SnapshotMetadata.index');
          index = r.varint();
        } else if (f === 3) {
          r.expectWire(w, WIRE_VARINT, 'SnapshotMetadata.term');
          term = r.varint();
        } else {
          r.skip(w);
        }
      }
      if (r.pos !== mdEnd) r.fail('snapshot metadata overruns its length');
    } else {
      r.skip(wire);
    }
  }
  if (r.pos !== end) r.fail('snapshot overruns its length');
  return { metadata: { index, term, confState }, data };
}

// ---------------------------------------------------------------------------------------------
// Public API

export function encodeEntry(e: Entry): Uint8Array {
  checkEntry(e);
  const buf = new Uint8Array(entryBodySize(e));
  const end = writeEntryBody(buf, 0, e);
  if (end !== buf.byteLength) throw new Error('raft codec: entry size mismatch');
  return buf;
}

export function decodeEntry(b: Uint8Array): Entry {
  const r = new Reader(b, 'Entry', 0, b.byteLength);
  return readEntry(r, b.byteLength);
}

export function encodeHardState(hs: HardState): Uint8Array {
  checkNumber(hs.term, 'hard state term');
  checkNumber(hs.commit, 'hard state commit');
  checkId(hs.vote, 'hard state vote');
  const buf = new Uint8Array(3 + varintSize(hs.term) + bigVarintSize(hs.vote) + varintSize(hs.commit));
  let pos = 0;
  buf[pos++] = 0x08;
  pos = writeVarint(buf, pos, hs.term);
  buf[pos++] = 0x10;
  pos = writeBigVarint(buf, pos, hs.vote);
  buf[pos++] = 0x18;
  writeVarint(buf, pos, hs.commit);
  return buf;
}

export function decodeHardState(b: Uint8Array): HardState {
  const r = new Reader(b, 'HardState', 0, b.byteLength);
  let term = 0;
  let vote = 0n;
  let commit = 0;
  while (!r.done()) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1) {
      r.expectWire(wire, WIRE_VARINT, 'HardState.term');
      term = r.varint();
    } else if (field === 2) {
      r.expectWire(wire, WIRE_VARINT, 'HardState.vote');
      vote = r.bigVarint();
    } else if (field === 3) {
      r.expectWire(wire, WIRE_VARINT, 'HardState.commit');
      commit = r.varint();
    } else {
      r.skip(wire);
    }
  }
  return { term, vote, commit };
}

export function encodeConfState(cs: ConfState): Uint8Array {
  for (const id of cs.voters) checkId(id, 'voter id');
  for (const id of cs.learners) checkId(id, 'learner id');
  const buf = new Uint8Array(confStateBodySize(cs));
  writeConfStateBody(buf, 0, cs);
  return buf;
}

export function decodeConfState(b: Uint8Array): ConfState {
  return readConfState(new Reader(b, 'ConfState', 0, b.byteLength), b.byteLength);
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  checkSnapshot(s);
  const buf = new Uint8Array(snapshotBodySize(s));
  const end = writeSnapshotBody(buf, 0, s);
  if (end !== buf.byteLength) throw new Error('raft codec: snapshot size mismatch');
  return buf;
}

export function decodeSnapshot(b: Uint8Array): Snapshot {
  return readSnapshot(new Reader(b, 'Snapshot', 0, b.byteLength), b.byteLength);
}

export function encodeConfChange(cc: ConfChange): Uint8Array {
  checkId(cc.id, 'conf change id');
  checkId(cc.nodeId, 'conf change node id');
  if (!isConfChangeType(cc.type)) throw new ErrInvalidMessage(`unknown conf change type ${cc.type}`);
  const buf = new Uint8Array(
    3 + bigVarintSize(cc.id) + varintSize(cc.type) + bigVarintSize(cc.nodeId) + bytesFieldSize(cc.context),
  );
  let pos = 0;
  buf[pos++] = 0x08;
  pos = writeBigVarint(buf, pos, cc.id);
  buf[pos++] = 0x10;
  pos = writeVarint(buf, pos, cc.type);
  buf[pos++] = 0x18;
  pos = writeBigVarint(buf, pos, cc.nodeId);
  writeBytesField(buf, pos, 0x22, cc.context);
  return buf;
}

function isConfChangeType(t: number): t is ConfChangeType {
  return (
    t === ConfChangeType.AddNode ||
    t === ConfChangeType.RemoveNode ||
    t === ConfChangeType.UpdateNode ||
    t === ConfChangeType.AddLearnerNode
  );
}

export function decodeConfChange(b: Uint8Array): ConfChange {
  const r = new Reader(b, 'ConfChange', 0, b.byteLength);
  let id = 0n;
  let type = 0;
  let nodeId = 0n;
  let context = EMPTY_BYTES;
  while (!r.done()) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    switch (field) {
      case 1:
        r.expectWire(wire, WIRE_VARINT, 'ConfChange.id');
        id = r.bigVarint();
        break;
      case 2:
        r.expectWire(wire, WIRE_VARINT, 'ConfChange.type');
        type = r.varint();
        if (!isConfChangeType(type)) r.fail(`unknown conf change type ${type}`);
        break;
      case 3:
        r.expectWire(wire, WIRE_VARINT, 'ConfChange.node_id');
        nodeId = r.bigVarint();
        break;
      case 4:
        r.expectWire(wire, WIRE_BYTES, 'ConfChange.context');
        context = r.bytes();
        break;
      default:
        r.skip(wire);
    }
  }
  return { id, type: type as ConfChangeType, nodeId, context };
}

function messageSize(m: Message): number {
  let n =
    1 +
    varintSize(m.type) +
    1 +
    bigVarintSize(m.to) +
    1 +
    bigVarintSize(m.from) +
    1 +
    varintSize(m.term) +
    1 +
    varintSize(m.logTerm) +
    1 +
    varintSize(m.index) +
    1 +
    varintSize(m.commit) +
    2 + // reject
    1 +
    varintSize(m.rejectHint) +
    bytesFieldSize(m.context);
  for (const e of m.entries) {
    const s = entryBodySize(e);
    n += 1 + varintSize(s) + s;
  }
  if (m.snapshot !== undefined) {
    const s = snapshotBodySize(m.snapshot);
    n += 1 + varintSize(s) + s;
  }
  return n;
}

function checkMessage(m: Message): void {
  if (!isMessageType(m.type)) throw new ErrInvalidMessage(`unknown message type ${m.type}`);
  checkId(m.to, 'to');
  checkId(m.from, 'from');
  checkNumber(m.term, 'term');
  checkNumber(m.logTerm, 'logTerm');
  checkNumber(m.index, 'index');
  checkNumber(m.commit, 'commit');
  checkNumber(m.rejectHint, 'rejectHint');
  for (const e of m.entries) checkEntry(e);
  if (m.snapshot !== undefined) checkSnapshot(m.snapshot);
  if (!(m.context instanceof Uint8Array)) throw new ErrInvalidMessage('context must be a Uint8Array');
}

/** Encodes a message in raftpb's wire format. Throws ErrInvalidMessage for an ill-formed message. */
export function encodeMessage(m: Message): Uint8Array {
  checkMessage(m);
  const buf = new Uint8Array(messageSize(m));
  let pos = 0;
  buf[pos++] = 0x08;
  pos = writeVarint(buf, pos, m.type);
  buf[pos++] = 0x10;
  pos = writeBigVarint(buf, pos, m.to);
  buf[pos++] = 0x18;
  pos = writeBigVarint(buf, pos, m.from);
  buf[pos++] = 0x20;
  pos = writeVarint(buf, pos, m.term);
  buf[pos++] = 0x28;
  pos = writeVarint(buf, pos, m.logTerm);
  buf[pos++] = 0x30;
  pos = writeVarint(buf, pos, m.index);
  for (const e of m.entries) {
    buf[pos++] = 0x3a;
    pos = writeVarint(buf, pos, entryBodySize(e));
    pos = writeEntryBody(buf, pos, e);
  }
  buf[pos++] = 0x40;
  pos = writeVarint(buf, pos, m.commit);
  if (m.snapshot !== undefined) {
    buf[pos++] = 0x4a;
    pos = writeVarint(buf, pos, snapshotBodySize(m.snapshot));
    pos = writeSnapshotBody(buf, pos, m.snapshot);
  }
  buf[pos++] = 0x50;
  buf[pos++] = m.reject ? 1 : 0;
  buf[pos++] = 0x58;
  pos = writeVarint(buf, pos, m.rejectHint);
  pos = writeBytesField(buf, pos, 0x62, m.context);
  if (pos !== buf.byteLength) throw new Error('raft codec: message size mismatch');
  return buf;
}

/** Decodes a message written by encodeMessage (or by etcd's raftpb). Throws ErrDecode on malformed bytes. */
export function decodeMessage(b: Uint8Array): Message {
  const r = new Reader(b, 'Message', 0, b.byteLength);
  let type = -1;
  let to = 0n;
  let from = 0n;
  let term = 0;
  let logTerm = 0;
  let index = 0;
  const entries: Entry[] = [];
  let commit = 0;
  let snapshot: Snapshot | undefined;
  let reject = false;
  let rejectHint = 0;
  let context = EMPTY_BYTES;
  while (!r.done()) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    switch (field) {
      case 1:
        r.expectWire(wire, WIRE_VARINT, 'Message.type');
        type = r.varint();
        if (!isMessageType(type)) r.fail(`unknown message type ${type}`);
        break;
      case 2:
        r.expectWire(wire, WIRE_VARINT, 'Message.to');
        to = r.bigVarint();
        break;
      case 3:
        r.expectWire(wire, WIRE_VARINT, 'Message.from');
        from = r.bigVarint();
        break;
      case 4:
        r.expectWire(wire, WIRE_VARINT, 'Message.term');
        term = r.varint();
        break;
      case 5:
        r.expectWire(wire, WIRE_VARINT, 'Message.logTerm');
        logTerm = r.varint();
        break;
      case 6:
        r.expectWire(wire, WIRE_VARINT, 'Message.index');
        index = r.varint();
        break;
      case 7:
        r.expectWire(wire, WIRE_BYTES, 'Message.entries');
        entries.push(readEntry(r, r.lengthEnd()));
        break;
      case 8:
        r.expectWire(wire, WIRE_VARINT, 'Message.commit');
        commit = r.varint();
        break;
      case 9:
        r.expectWire(wire, WIRE_BYTES, 'Message.snapshot');
        snapshot = readSnapshot(r, r.lengthEnd());
        break;
      case 10:
        r.expectWire(wire, WIRE_VARINT, 'Message.reject');
        reject = r.bool();
        break;
      case 11:
        r.expectWire(wire, WIRE_VARINT, 'Message.rejectHint');
        rejectHint = r.varint();
        break;
      case 12:
        r.expectWire(wire, WIRE_BYTES, 'Message.context');
        context = r.bytes();
        break;
      default:
        r.skip(wire);
    }
  }
  if (type < 0) r.fail('missing message type');
  return {
    type: type as Message['type'],
    to,
    from,
    term,
    logTerm,
    index,
    entries,
    commit,
    snapshot,
    reject,
    rejectHint,
    context,
  };
}
