/**
 * The hand-written encoder of WatchResponse (and its Events), byte for byte what ts-proto's
 * generated `WatchResponse.encode` gives. A put watched by many watchers is encoded once per
 * watcher, so this is the fan-out's hottest code.
 */
import type { WatchResponse } from '../gen/etcdserverpb/rpc.ts';
import type { Event } from '../gen/mvccpb/kv.ts';
import { encodeWith, sizeKeyValueField, sizeResponseHeader, writeKeyValueField, writeResponseHeader } from './kv.ts';
import {
  checkInt32,
  fillSlot,
  int32Size,
  nextSlot,
  reserveSlot,
  sizeInt64,
  utf8Size,
  varint32Size,
  writeByte,
  writeInt32,
  writeInt64,
  writeString,
  writeUint32,
} from './wire.ts';

function sizeEvent(m: Event): number {
  let total = 0;
  if (m.type !== 0) {
    checkInt32(m.type);
    total += 1 + int32Size(m.type);
  }
  return total + sizeKeyValueField(m.kv) + sizeKeyValueField(m.prevKv);
}

function writeEvent(m: Event): void {
  if (m.type !== 0) {
    writeByte(8);
    writeInt32(m.type);
  }
  writeKeyValueField(18, m.kv);
  writeKeyValueField(26, m.prevKv);
}

/** UTF-8 length of `cancelReason`, from the size pass to the write pass. */
let cancelReasonBytes = 0;

function sizeWatchResponse(m: WatchResponse): number {
  let total = 0;
  if (m.header !== undefined) {
    const slot = reserveSlot();
    const n = sizeResponseHeader(m.header);
    fillSlot(slot, n);
    total += 1 + varint32Size(n) + n;
  }
  if (m.watchId !== 0n) {
    total += 1 + sizeInt64(m.watchId, 'watchId');
  }
  if (m.created !== false) total += 2;
  if (m.canceled !== false) total += 2;
  if (m.compactRevision !== 0n) {
    total += 1 + sizeInt64(m.compactRevision, 'compactRevision');
  }
  if (m.cancelReason !== '') {
    cancelReasonBytes = utf8Size(m.cancelReason);
    total += 1 + varint32Size(cancelReasonBytes) + cancelReasonBytes;
  }
  if (m.fragment !== false) total += 2;
  for (const event of m.events) {
    const slot = reserveSlot();
    const n = sizeEvent(event);
    fillSlot(slot, n);
    total += 1 + varint32Size(n) + n;
  }
  return total;
}

function writeWatchResponse(m: WatchResponse): void {
  if (m.header !== undefined) {
    writeByte(10);
    writeUint32(nextSlot());
    writeResponseHeader(m.header);
  }
  if (m.watchId !== 0n) {
    writeByte(16);
    writeInt64(m.watchId);
  }
  if (m.created !== false) {
    writeByte(24);
    writeByte(m.created ? 1 : 0);
  }
  if (m.canceled !== false) {
    writeByte(32);
    writeByte(m.canceled ? 1 : 0);
  }
  if (m.compactRevision !== 0n) {
    writeByte(40);
    writeInt64(m.compactRevision);
  }
  if (m.cancelReason !== '') {
    writeByte(50);
    writeString(m.cancelReason, cancelReasonBytes);
  }
  if (m.fragment !== false) {
    writeByte(56);
    writeByte(m.fragment ? 1 : 0);
  }
  for (const event of m.events) {
    writeByte(90);
    writeUint32(nextSlot());
    writeEvent(event);
  }
}

/** An Event message alone (what a WatchResponse's events field holds). */
export function encodeEvent(m: Event): Buffer {
  return encodeWith(sizeEvent, writeEvent, m, 0);
}

export function encodeWatchResponse(m: WatchResponse, headroomBytes = 0): Buffer {
  return encodeWith(sizeWatchResponse, writeWatchResponse, m, headroomBytes);
}
