/**
 * The payload of a normal raft entry: one client request.
 *
 *   offset 0  u8   kind (RequestKind), with AUTH_HEADER_FLAG set when a caller header follows
 *   offset 1  u64  request id, big endian (unique per member and start; resolves the waiter)
 *   [caller header, when flagged: u64 auth revision, u16 user name length, user name (UTF-8)]
 *   then      ...  the request message, protobuf-encoded as on the wire (etcdserverpb)
 *
 * The request bytes are the ones the client sent, so the proposer never re-encodes them. The
 * caller header is etcd's RequestHeader username and auth_revision: who asked, checked again
 * when the entry applies. A member's own requests (lease expiry, automatic compaction) carry
 * none.
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
  /** etcd's InternalAuthenticateRequest (name, simple token prefix): the password was checked by the proposer. */
  Authenticate: 11,
  AuthEnable: 12,
  AuthDisable: 13,
  AuthUserAdd: 14,
  AuthUserDelete: 15,
  AuthUserChangePassword: 16,
  AuthUserGrantRole: 17,
  AuthUserRevokeRole: 18,
  AuthRoleAdd: 19,
  AuthRoleDelete: 20,
  AuthRoleGrantPermission: 21,
  AuthRoleRevokePermission: 22,
} as const;
export type RequestKind = (typeof RequestKind)[keyof typeof RequestKind];

export const REQUEST_HEADER_BYTES = 9;
/** Set in the kind byte when a caller header follows the request id. */
export const AUTH_HEADER_FLAG = 0x80;
/** A user name longer than this is not stamped on an entry (no such user can exist: it is refused first). */
export const CALLER_NAME_MAX_BYTES = 0xffff;

/** Who proposed a request: etcd's RequestHeader username and auth_revision. */
export interface RequestCaller {
  readonly username: string;
  readonly revision: number;
}

/** Size of the slabs that entries' bytes are cut from. */
const ENTRY_SLAB_BYTES = 64 * 1024;
/** Larger entries get a buffer of their own. */
const ENTRY_SLAB_MAX_CUT = 4 * 1024;

let entrySlab = Buffer.allocUnsafeSlow(0);
let entrySlabUsed = 0;

/**
 * Bytes for an entry's data. An entry stays in the raft log until the log is compacted, up to
 * --snapshot-count entries later; cut from Node's shared buffer pool it would keep alive a pool
 * slab mostly filled with short-lived bytes (responses, frames), about twice its own size. Its
 * own slabs hold only entries, which leave the log in the order they came.
 */
function entryBytes(n: number): Buffer {
  if (n > ENTRY_SLAB_MAX_CUT) return Buffer.allocUnsafeSlow(n);
  if (entrySlab.length - entrySlabUsed < n) {
    entrySlab = Buffer.allocUnsafeSlow(ENTRY_SLAB_BYTES);
    entrySlabUsed = 0;
  }
  const out = entrySlab.subarray(entrySlabUsed, entrySlabUsed + n);
  entrySlabUsed += (n + 7) & ~7;
  return out;
}

export function encodeRaftRequest(
  kind: RequestKind,
  id: bigint,
  payload: Uint8Array,
  caller?: RequestCaller,
): Uint8Array {
  if (caller === undefined) {
    const out = entryBytes(REQUEST_HEADER_BYTES + payload.length);
    out[0] = kind;
    out.writeBigUInt64BE(id, 1);
    out.set(payload, REQUEST_HEADER_BYTES);
    return out;
  }
  const nameBytes = caller.username.length === 0 ? 0 : Buffer.byteLength(caller.username, 'utf8');
  if (nameBytes > CALLER_NAME_MAX_BYTES) throw new RangeError(`user name of ${nameBytes} bytes`);
  const at = REQUEST_HEADER_BYTES + 10 + nameBytes;
  const out = entryBytes(at + payload.length);
  out[0] = kind | AUTH_HEADER_FLAG;
  out.writeBigUInt64BE(id, 1);
  // The revision is a safe integer: two 32-bit halves, without a BigInt.
  out.writeUInt32BE(Math.floor(caller.revision / 0x1_0000_0000), REQUEST_HEADER_BYTES);
  out.writeUInt32BE(caller.revision >>> 0, REQUEST_HEADER_BYTES + 4);
  out.writeUInt16BE(nameBytes, REQUEST_HEADER_BYTES + 8);
  if (nameBytes > 0) out.write(caller.username, REQUEST_HEADER_BYTES + 10, 'utf8');
  out.set(payload, at);
  return out;
}

export interface DecodedRaftRequest {
  kind: number;
  id: bigint;
  payload: Uint8Array;
  /** The caller header, when the entry has one. */
  caller: RequestCaller | undefined;
}

export function decodeRaftRequest(data: Uint8Array): DecodedRaftRequest {
  if (data.length < REQUEST_HEADER_BYTES) throw new Error(`raft request too short: ${data.length} bytes`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const first = data[0]!;
  const id = view.getBigUint64(1);
  if ((first & AUTH_HEADER_FLAG) === 0) {
    return { kind: first, id, payload: data.subarray(REQUEST_HEADER_BYTES), caller: undefined };
  }
  if (data.length < REQUEST_HEADER_BYTES + 10) throw new Error(`raft request caller header truncated`);
  const revision = view.getUint32(REQUEST_HEADER_BYTES) * 0x1_0000_0000 + view.getUint32(REQUEST_HEADER_BYTES + 4);
  const nameBytes = view.getUint16(REQUEST_HEADER_BYTES + 8);
  const at = REQUEST_HEADER_BYTES + 10 + nameBytes;
  if (data.length < at) throw new Error(`raft request caller name truncated`);
  const username = Buffer.from(data.buffer, data.byteOffset + REQUEST_HEADER_BYTES + 10, nameBytes).toString('utf8');
  return { kind: first & ~AUTH_HEADER_FLAG, id, payload: data.subarray(at), caller: { username, revision } };
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
