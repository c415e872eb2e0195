/**
 * What commands print, in etcdctl's output formats: simple, json, fields, table, protobuf.
 * A printer receives etcd's response messages (the shapes etcdctl's Go printers receive) and
 * writes exactly what etcdctl 3.4 writes for them. A format that has no form for an answer
 * fails with `<format> not supported as output format` (exit code 4), as etcdctl does.
 */
import type {
  AlarmResponse,
  DeleteRangeResponse,
  HashKVResponse,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeResponse,
  LeaseTimeToLiveResponse,
  MemberAddResponse,
  MemberListResponse,
  MemberPromoteResponse,
  MemberRemoveResponse,
  MemberUpdateResponse,
  MoveLeaderResponse,
  PutResponse,
  RangeResponse,
  ResponseHeader,
  StatusResponse,
  TxnResponse,
} from '../../proto/index.ts';
import { CliExit, ExitCode } from '../command.ts';
import type { Output } from '../io.ts';

/** A key-value pair as printed (etcd's message or the client's). */
export interface KvLike {
  key: Uint8Array;
  value: Uint8Array;
  createRevision: bigint;
  modRevision: bigint;
  version: bigint;
  lease: bigint;
}

/** An event as printed: type 0 is PUT, 1 is DELETE. */
export interface EventLike {
  type: number;
  kv: KvLike | undefined;
  prevKv: KvLike | undefined;
}

/** clientv3.WatchResponse as etcdctl prints it. */
export interface WatchView {
  header: ResponseHeader;
  events: EventLike[];
  compactRevision: bigint;
  canceled: boolean;
  created: boolean;
}

export interface EpHealth {
  ep: string;
  health: boolean;
  took: string;
  error: string;
}

export interface EpStatus {
  ep: string;
  resp: StatusResponse;
}

export interface EpHashKV {
  ep: string;
  resp: HashKVResponse;
}

export interface Printer {
  del(r: DeleteRangeResponse): void;
  get(r: RangeResponse): void;
  put(r: PutResponse): void;
  txn(r: TxnResponse): void;
  watch(r: WatchView): void;
  grant(r: LeaseGrantResponse): void;
  revoke(id: bigint, r: LeaseRevokeResponse): void;
  keepAlive(r: LeaseKeepAliveResponse): void;
  timeToLive(r: LeaseTimeToLiveResponse, keys: boolean): void;
  leases(r: LeaseLeasesResponse): void;
  memberAdd(r: MemberAddResponse): void;
  memberRemove(id: bigint, r: MemberRemoveResponse): void;
  memberUpdate(id: bigint, r: MemberUpdateResponse): void;
  memberPromote(id: bigint, r: MemberPromoteResponse): void;
  memberList(r: MemberListResponse): void;
  endpointHealth(list: readonly EpHealth[]): void;
  endpointStatus(list: readonly EpStatus[]): void;
  endpointHashKV(list: readonly EpHashKV[]): void;
  moveLeader(leader: bigint, target: bigint, r: MoveLeaderResponse): void;
  alarm(r: AlarmResponse): void;
}

export const OutputFormat = {
  SIMPLE: 'simple',
  JSON: 'json',
  FIELDS: 'fields',
  TABLE: 'table',
  PROTOBUF: 'protobuf',
} as const;
export type OutputFormat = (typeof OutputFormat)[keyof typeof OutputFormat];

export interface PrinterOutput {
  readonly stdout: Output;
  readonly stderr: Output;
}

/** A printer whose every method fails as "not supported"; formats override what they have. */
export class UnsupportedPrinter implements Printer {
  protected readonly format: string;
  protected readonly out: PrinterOutput;

  constructor(format: string, out: PrinterOutput) {
    this.format = format;
    this.out = out;
  }

  protected unsupported(): never {
    throw new CliExit(ExitCode.BAD_FEATURE, `${this.format} not supported as output format`);
  }

  del(_r: DeleteRangeResponse): void {
    this.unsupported();
  }
  get(_r: RangeResponse): void {
    this.unsupported();
  }
  put(_r: PutResponse): void {
    this.unsupported();
  }
  txn(_r: TxnResponse): void {
    this.unsupported();
  }
  watch(_r: WatchView): void {
    this.unsupported();
  }
  grant(_r: LeaseGrantResponse): void {
    this.unsupported();
  }
  revoke(_id: bigint, _r: LeaseRevokeResponse): void {
    this.unsupported();
  }
  keepAlive(_r: LeaseKeepAliveResponse): void {
    this.unsupported();
  }
  timeToLive(_r: LeaseTimeToLiveResponse, _keys: boolean): void {
    this.unsupported();
  }
  leases(_r: LeaseLeasesResponse): void {
    this.unsupported();
  }
  memberAdd(_r: MemberAddResponse): void {
    this.unsupported();
  }
  memberRemove(_id: bigint, _r: MemberRemoveResponse): void {
    this.unsupported();
  }
  memberUpdate(_id: bigint, _r: MemberUpdateResponse): void {
    this.unsupported();
  }
  memberPromote(_id: bigint, _r: MemberPromoteResponse): void {
    this.unsupported();
  }
  memberList(_r: MemberListResponse): void {
    this.unsupported();
  }
  endpointHealth(_list: readonly EpHealth[]): void {
    this.unsupported();
  }
  endpointStatus(_list: readonly EpStatus[]): void {
    this.unsupported();
  }
  endpointHashKV(_list: readonly EpHashKV[]): void {
    this.unsupported();
  }
  moveLeader(_leader: bigint, _target: bigint, _r: MoveLeaderResponse): void {
    this.unsupported();
  }
  alarm(_r: AlarmResponse): void {
    this.unsupported();
  }
}

/** Rows of `member list` in the simple and table formats (etcdctl's makeMemberListTable). */
export function memberListRows(r: MemberListResponse): { header: string[]; rows: string[][] } {
  const header = ['ID', 'Status', 'Name', 'Peer Addrs', 'Client Addrs', 'Is Learner'];
  const rows = r.members.map((m) => [
    m.ID.toString(16),
    m.name.length === 0 ? 'unstarted' : 'started',
    m.name,
    m.peerURLs.join(','),
    m.clientURLs.join(','),
    m.isLearner ? 'true' : 'false',
  ]);
  return { header, rows };
}

export function endpointHealthRows(list: readonly EpHealth[]): { header: string[]; rows: string[][] } {
  return {
    header: ['endpoint', 'health', 'took', 'error'],
    rows: list.map((h) => [h.ep, String(h.health), h.took, h.error]),
  };
}

export function endpointStatusRows(
  list: readonly EpStatus[],
  humanize: (n: bigint) => string,
): { header: string[]; rows: string[][] } {
  return {
    header: [
      'endpoint',
      'ID',
      'version',
      'db size',
      'is leader',
      'is learner',
      'raft term',
      'raft index',
      'raft applied index',
      'errors',
    ],
    rows: list.map(({ ep, resp }) => [
      ep,
      (resp.header?.memberId ?? 0n).toString(16),
      resp.version,
      humanize(resp.dbSize),
      String(resp.leader === (resp.header?.memberId ?? 0n)),
      String(resp.isLearner),
      String(resp.raftTerm),
      String(resp.raftIndex),
      String(resp.raftAppliedIndex),
      resp.errors.join(', '),
    ]),
  };
}

export function endpointHashKVRows(list: readonly EpHashKV[]): { header: string[]; rows: string[][] } {
  return { header: ['endpoint', 'hash'], rows: list.map(({ ep, resp }) => [ep, String(resp.hash)]) };
}
