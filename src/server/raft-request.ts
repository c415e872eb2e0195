/**
 * The payload of a normal raft entry: one client request.
 *
 *   offset 0  u8   kind (RequestKind)
 *   offset 1  u64  request id, big endian (unique per member and start; resolves the waiter)
 *   offset 9  ...  the request message, protobuf-encoded as on the wire (etcdserverpb)
 *
 * The request bytes are the ones the client sent, so the proposer never re-encodes them.
 */
export const RequestKind = {
  Put: 1,
  DeleteRange: 2,
  Txn: 3,
  Compaction: 4,
  Alarm: 5,
  LeaseGrant: 6,
  LeaseRevoke: 7,
  LeaseCheckpoint: 8,
  MemberAttributes: 9,
  /** etcd 3.5's DowngradeInfoSet: the payload is the downgrade job's JSON as etcd stores it. */
  DowngradeInfoSet: 10,
} as const;
export type RequestKind = (typeof RequestKind)[keyof typeof RequestKind];

export const REQUEST_HEADER_BYTES = 9;

export function encodeRaftRequest(kind: RequestKind, id: bigint, payload: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(REQUEST_HEADER_BYTES + payload.length);
  out[0] = kind;
  out.writeBigUInt64BE(id, 1);
  out.set(payload, REQUEST_HEADER_BYTES);
  return out;
}

export interface DecodedRaftRequest {
  kind: number;
  id: bigint;
  payload: Uint8Array;
}

export function decodeRaftRequest(data: Uint8Array): DecodedRaftRequest {
  if (data.length < REQUEST_HEADER_BYTES) throw new Error(`raft request too short: ${data.length} bytes`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { kind: data[0]!, id: view.getBigUint64(1), payload: data.subarray(REQUEST_HEADER_BYTES) };
}

/**
 * Request ids as etcd makes them: the low 16 bits of the member id in the top 16 bits, then
 * the start time in milliseconds (40 bits) shifted by 8, plus a counter; unique across restarts.
 */
export class RequestIdGenerator {
  private next: bigint;

  constructor(memberId: bigint, nowMs: number) {
    const prefix = (memberId & 0xffffn) << 48n;
    const suffix = (BigInt(nowMs) & 0xff_ffff_ffffn) << 8n;
    this.next = prefix | suffix;
  }

  id(): bigint {
    this.next = (this.next + 1n) & 0xffff_ffff_ffff_ffffn;
    return this.next;
  }
}
