import { createHash } from 'node:crypto';

/**
 * Member and cluster ids, derived exactly as etcd derives them so that the same
 * `--initial-cluster` and `--initial-cluster-token` give the same ids on etcd and etcd-ts.
 *
 * member id  = first 8 bytes (big endian) of sha1(sorted peer URLs joined + cluster token)
 * cluster id = first 8 bytes (big endian) of sha1(sorted member ids, 8 bytes big endian each)
 */
export function memberIdFromPeerUrls(peerUrls: readonly string[], clusterToken: string): bigint {
  const joined = [...peerUrls].sort().join('') + clusterToken;
  return first8(createHash('sha1').update(joined, 'utf8').digest());
}

export function clusterIdFromMemberIds(memberIds: readonly bigint[]): bigint {
  const sorted = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const buf = Buffer.alloc(8 * sorted.length);
  sorted.forEach((id, i) => {
    buf.writeBigUInt64BE(id, i * 8);
  });
  return first8(createHash('sha1').update(buf).digest());
}

/** etcd prints ids as lower-case hex without leading zeros. */
export function idToHex(id: bigint): string {
  return id.toString(16);
}

export function hexToId(hex: string): bigint {
  if (!/^[0-9a-fA-F]{1,16}$/.test(hex)) throw new Error(`invalid id "${hex}"`);
  return BigInt(`0x${hex}`);
}

function first8(digest: Buffer): bigint {
  return digest.readBigUInt64BE(0);
}
