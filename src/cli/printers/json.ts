/**
 * The json format (etcdctl's printer_json.go): Go's encoding/json of the Go structs etcdctl
 * prints. Field names are the Go json tags of etcd 3.4's generated types (`cluster_id`,
 * `create_revision`, `dbSize`, `peerURLs`...), every field but the clientv3 wrappers' is
 * `omitempty`, bytes are base64, 64-bit integers are exact decimals, and a oneof prints as
 * `{"Response":{"ResponseRange":{...}}}`.
 */
import type {
  AlarmResponse,
  DeleteRangeResponse,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeResponse,
  LeaseTimeToLiveResponse,
  Member,
  MemberAddResponse,
  MemberListResponse,
  MemberPromoteResponse,
  MemberRemoveResponse,
  MemberUpdateResponse,
  MoveLeaderResponse,
  PutResponse,
  RangeResponse,
  ResponseHeader,
  ResponseOp,
  StatusResponse,
  TxnResponse,
} from '../../proto/index.ts';
import { goJsonString } from '../go-format.ts';
import type { EpHashKV, EpHealth, EpStatus, EventLike, KvLike, Printer, PrinterOutput, WatchView } from './printer.ts';

/** Members of a JSON object; undefined values are left out (omitempty). */
type Fields = Array<[string, string | undefined]>;

function object(fields: Fields): string {
  const parts: string[] = [];
  for (const [name, value] of fields) if (value !== undefined) parts.push(`${goJsonString(name)}:${value}`);
  return `{${parts.join(',')}}`;
}

/** omitempty integers. */
function int(v: bigint | number): string | undefined {
  return v === 0n || v === 0 ? undefined : String(v);
}
function bool(v: boolean): string | undefined {
  return v ? 'true' : undefined;
}
function bytes(v: Uint8Array): string | undefined {
  return v.length === 0 ? undefined : `"${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')}"`;
}
function str(v: string): string | undefined {
  return v === '' ? undefined : goJsonString(v);
}
function list<T>(items: readonly T[], each: (item: T) => string): string | undefined {
  return items.length === 0 ? undefined : `[${items.map(each).join(',')}]`;
}
function strings(items: readonly string[]): string | undefined {
  return list(items, goJsonString);
}

export function headerJson(h: ResponseHeader | undefined): string | undefined {
  if (h === undefined) return undefined;
  return object(headerFields(h));
}

function headerFields(h: ResponseHeader | undefined): Fields {
  if (h === undefined) return [];
  return [
    ['cluster_id', int(h.clusterId)],
    ['member_id', int(h.memberId)],
    ['revision', int(h.revision)],
    ['raft_term', int(h.raftTerm)],
  ];
}

export function kvJson(kv: KvLike): string {
  return object([
    ['key', bytes(kv.key)],
    ['create_revision', int(kv.createRevision)],
    ['mod_revision', int(kv.modRevision)],
    ['version', int(kv.version)],
    ['value', bytes(kv.value)],
    ['lease', int(kv.lease)],
  ]);
}

function rangeJson(r: RangeResponse): string {
  return object([
    ['header', headerJson(r.header)],
    ['kvs', list(r.kvs, kvJson)],
    ['more', bool(r.more)],
    ['count', int(r.count)],
  ]);
}

function putJson(r: PutResponse): string {
  return object([
    ['header', headerJson(r.header)],
    ['prev_kv', r.prevKv === undefined ? undefined : kvJson(r.prevKv)],
  ]);
}

function deleteJson(r: DeleteRangeResponse): string {
  return object([
    ['header', headerJson(r.header)],
    ['deleted', int(r.deleted)],
    ['prev_kvs', list(r.prevKvs, kvJson)],
  ]);
}

function responseOpJson(op: ResponseOp): string {
  const r = op.response;
  let inner: string;
  switch (r?.$case) {
    case 'responseRange':
      inner = object([['ResponseRange', rangeJson(r.value)]]);
      break;
    case 'responsePut':
      inner = object([['ResponsePut', putJson(r.value)]]);
      break;
    case 'responseDeleteRange':
      inner = object([['ResponseDeleteRange', deleteJson(r.value)]]);
      break;
    case 'responseTxn':
      inner = object([['ResponseTxn', txnJson(r.value)]]);
      break;
    default:
      inner = 'null';
  }
  return object([['Response', inner]]);
}

function txnJson(r: TxnResponse): string {
  return object([
    ['header', headerJson(r.header)],
    ['succeeded', bool(r.succeeded)],
    ['responses', list(r.responses, responseOpJson)],
  ]);
}

function eventJson(e: EventLike): string {
  return object([
    ['type', int(e.type)],
    ['kv', e.kv === undefined ? undefined : kvJson(e.kv)],
    ['prev_kv', e.prevKv === undefined ? undefined : kvJson(e.prevKv)],
  ]);
}

function memberJson(m: Member): string {
  return object([
    ['ID', int(m.ID)],
    ['name', str(m.name)],
    ['peerURLs', strings(m.peerURLs)],
    ['clientURLs', strings(m.clientURLs)],
    ['isLearner', bool(m.isLearner)],
  ]);
}

function membersJson(r: { header: ResponseHeader | undefined; members: Member[] }): string {
  return object([
    ['header', headerJson(r.header)],
    ['members', list(r.members, memberJson)],
  ]);
}

/** StatusResponse with etcd 3.4's fields only. */
function statusJson(r: StatusResponse): string {
  return object([
    ['header', headerJson(r.header)],
    ['version', str(r.version)],
    ['dbSize', int(r.dbSize)],
    ['leader', int(r.leader)],
    ['raftIndex', int(r.raftIndex)],
    ['raftTerm', int(r.raftTerm)],
    ['raftAppliedIndex', int(r.raftAppliedIndex)],
    ['errors', strings(r.errors)],
    ['dbSizeInUse', int(r.dbSizeInUse)],
    ['isLearner', bool(r.isLearner)],
  ]);
}

export class JsonPrinter implements Printer {
  private readonly out: PrinterOutput;

  constructor(out: PrinterOutput) {
    this.out = out;
  }

  private print(json: string): void {
    this.out.stdout.write(`${json}\n`);
  }

  del(r: DeleteRangeResponse): void {
    this.print(deleteJson(r));
  }
  get(r: RangeResponse): void {
    this.print(rangeJson(r));
  }
  put(r: PutResponse): void {
    this.print(putJson(r));
  }
  txn(r: TxnResponse): void {
    this.print(txnJson(r));
  }
  watch(r: WatchView): void {
    // clientv3.WatchResponse: exported fields without json tags, nothing omitted.
    this.print(
      object([
        ['Header', object(headerFields(r.header))],
        ['Events', r.events.length === 0 ? 'null' : `[${r.events.map(eventJson).join(',')}]`],
        ['CompactRevision', String(r.compactRevision)],
        ['Canceled', String(r.canceled)],
        ['Created', String(r.created)],
      ]),
    );
  }
  grant(r: LeaseGrantResponse): void {
    // clientv3.LeaseGrantResponse embeds *pb.ResponseHeader: its fields come first, flattened.
    this.print(
      object([
        ...headerFields(r.header),
        ['ID', String(r.ID)],
        ['TTL', String(r.TTL)],
        ['Error', goJsonString(r.error)],
      ]),
    );
  }
  revoke(_id: bigint, r: LeaseRevokeResponse): void {
    this.print(object([['header', headerJson(r.header)]]));
  }
  keepAlive(r: LeaseKeepAliveResponse): void {
    this.print(object([...headerFields(r.header), ['ID', String(r.ID)], ['TTL', String(r.TTL)]]));
  }
  timeToLive(r: LeaseTimeToLiveResponse): void {
    const keys = r.keys.length === 0 ? 'null' : `[${r.keys.map((k) => bytes(k) ?? '""').join(',')}]`;
    this.print(
      object([
        ...headerFields(r.header),
        ['id', String(r.ID)],
        ['ttl', String(r.TTL)],
        ['granted-ttl', String(r.grantedTTL)],
        ['keys', keys],
      ]),
    );
  }
  leases(r: LeaseLeasesResponse): void {
    const leases = `[${r.leases.map((l) => object([['id', String(l.ID)]])).join(',')}]`;
    this.print(object([...headerFields(r.header), ['leases', leases]]));
  }
  memberAdd(r: MemberAddResponse): void {
    this.print(
      object([
        ['header', headerJson(r.header)],
        ['member', r.member === undefined ? undefined : memberJson(r.member)],
        ['members', list(r.members, memberJson)],
      ]),
    );
  }
  memberRemove(_id: bigint, r: MemberRemoveResponse): void {
    this.print(membersJson(r));
  }
  memberUpdate(_id: bigint, r: MemberUpdateResponse): void {
    this.print(membersJson(r));
  }
  memberPromote(_id: bigint, r: MemberPromoteResponse): void {
    this.print(membersJson(r));
  }
  memberList(r: MemberListResponse): void {
    this.print(membersJson(r));
  }
  endpointHealth(list: readonly EpHealth[]): void {
    const items = list.map((h) =>
      object([
        ['endpoint', goJsonString(h.ep)],
        ['health', String(h.health)],
        ['took', goJsonString(h.took)],
        ['error', str(h.error)],
      ]),
    );
    this.print(`[${items.join(',')}]`);
  }
  endpointStatus(list: readonly EpStatus[]): void {
    const items = list.map((s) =>
      object([
        ['Endpoint', goJsonString(s.ep)],
        ['Status', statusJson(s.resp)],
      ]),
    );
    this.print(`[${items.join(',')}]`);
  }
  endpointHashKV(list: readonly EpHashKV[]): void {
    const items = list.map((h) =>
      object([
        ['Endpoint', goJsonString(h.ep)],
        [
          'HashKV',
          object([
            ['header', headerJson(h.resp.header)],
            ['hash', int(h.resp.hash)],
            ['compact_revision', int(h.resp.compactRevision)],
          ]),
        ],
      ]),
    );
    this.print(`[${items.join(',')}]`);
  }
  moveLeader(_leader: bigint, _target: bigint, r: MoveLeaderResponse): void {
    this.print(object([['header', headerJson(r.header)]]));
  }
  alarm(r: AlarmResponse): void {
    const alarms = list(r.alarms, (a) =>
      object([
        ['memberID', int(a.memberID)],
        ['alarm', int(a.alarm)],
      ]),
    );
    this.print(
      object([
        ['header', headerJson(r.header)],
        ['alarms', alarms],
      ]),
    );
  }
}
