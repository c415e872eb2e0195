/** Versions reported by /version, Status and `--version`. The API level is the etcd release we speak. */
export const VERSION = {
  server: '3.5.0',
  cluster: '3.5.0',
  etcdTs: '0.1.0',
} as const;
