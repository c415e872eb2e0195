// gRPC metadata of etcd's API that clients send and the server reads.

/**
 * clientv3's WithRequireLeader: the call wants an answer only from a member that has a leader;
 * such a member's server refuses it otherwise, and ends its stream once the leader is lost.
 */
export const REQUIRE_LEADER_METADATA = { hasleader: 'true' } as const;
