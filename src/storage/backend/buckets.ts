// The backend's sub-databases, named as etcd names its bbolt buckets.

export const Bucket = {
  key: 'key',
  meta: 'meta',
  lease: 'lease',
  members: 'members',
  membersRemoved: 'members_removed',
  cluster: 'cluster',
  auth: 'auth',
  authUsers: 'authUsers',
  authRoles: 'authRoles',
  alarm: 'alarm',
} as const;

export type BucketName = (typeof Bucket)[keyof typeof Bucket];

/** Every bucket, in a fixed order: a bucket's position is its id in batches and snapshot streams. */
export const BUCKET_NAMES: readonly BucketName[] = [
  Bucket.key,
  Bucket.meta,
  Bucket.lease,
  Bucket.members,
  Bucket.membersRemoved,
  Bucket.cluster,
  Bucket.auth,
  Bucket.authUsers,
  Bucket.authRoles,
  Bucket.alarm,
];

export const BUCKET_COUNT = BUCKET_NAMES.length;

const BUCKET_IDS: Readonly<Record<string, number>> = Object.freeze(
  Object.fromEntries(BUCKET_NAMES.map((name, id) => [name, id])),
);

/** The id of a bucket name, or -1 for a name that is not a bucket. */
export function bucketId(name: string): number {
  const id = BUCKET_IDS[name];
  return id === undefined ? -1 : id;
}

/** Bucket ids ordered by the bytes of their names: the order bbolt walks buckets when etcd hashes. */
export const BUCKET_IDS_BY_NAME: readonly number[] = BUCKET_NAMES.map((_, id) => id).sort((a, b) =>
  Buffer.compare(Buffer.from(BUCKET_NAMES[a]!), Buffer.from(BUCKET_NAMES[b]!)),
);
