/** The fields format (etcdctl's printer_fields.go): `"Name" : value` lines. */
import type {
  AlarmResponse,
  DeleteRangeResponse,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeResponse,
  LeaseTimeToLiveResponse,
  MemberListResponse,
  PutResponse,
  RangeResponse,
  ResponseHeader,
  TxnResponse,
} from '../../proto/index.ts';
import { goQuote, goStringList } from '../go-format.ts';
import {
  type EpHashKV,
  type EpHealth,
  type EpStatus,
  type KvLike,
  type PrinterOutput,
  UnsupportedPrinter,
  type WatchView,
} from './printer.ts';

const EVENT_TYPES = ['PUT', 'DELETE'] as const;
const ALARM_TYPES = ['NONE', 'NOSPACE', 'CORRUPT'] as const;

export class FieldsPrinter extends UnsupportedPrinter {
  constructor(out: PrinterOutput) {
    super('fields', out);
  }

  private line(text: string): void {
    this.out.stdout.write(`${text}\n`);
  }

  private kv(prefix: string, kv: KvLike | undefined): void {
    const key = kv?.key ?? new Uint8Array();
    const value = kv?.value ?? new Uint8Array();
    this.line(`"${prefix}Key" : ${goQuote(key)}`);
    this.line(`"${prefix}CreateRevision" : ${kv?.createRevision ?? 0n}`);
    this.line(`"${prefix}ModRevision" : ${kv?.modRevision ?? 0n}`);
    this.line(`"${prefix}Version" : ${kv?.version ?? 0n}`);
    this.line(`"${prefix}Value" : ${goQuote(value)}`);
    this.line(`"${prefix}Lease" : ${kv?.lease ?? 0n}`);
  }

  private hdr(h: ResponseHeader | undefined): void {
    this.line(`"ClusterID" : ${h?.clusterId ?? 0n}`);
    this.line(`"MemberID" : ${h?.memberId ?? 0n}`);
    this.line(`"Revision" : ${h?.revision ?? 0n}`);
    this.line(`"RaftTerm" : ${h?.raftTerm ?? 0n}`);
  }

  override del(r: DeleteRangeResponse): void {
    this.hdr(r.header);
    this.line(`"Deleted" : ${r.deleted}`);
    for (const kv of r.prevKvs) this.kv('Prev', kv);
  }

  override get(r: RangeResponse): void {
    this.hdr(r.header);
    for (const kv of r.kvs) this.kv('', kv);
    this.line(`"More" : ${r.more}`);
    this.line(`"Count" : ${r.count}`);
  }

  override put(r: PutResponse): void {
    this.hdr(r.header);
    if (r.prevKv !== undefined) this.kv('Prev', r.prevKv);
  }

  override txn(r: TxnResponse): void {
    this.hdr(r.header);
    this.line(`"Succeeded" : ${r.succeeded}`);
    for (const op of r.responses) {
      const response = op.response;
      switch (response?.$case) {
        case 'responseDeleteRange':
          this.del(response.value);
          break;
        case 'responsePut':
          this.put(response.value);
          break;
        case 'responseRange':
          this.get(response.value);
          break;
        default:
          this.line(`"Unknown" : ${goQuote('unknown response')}`);
      }
    }
  }

  override watch(r: WatchView): void {
    this.hdr(r.header);
    for (const e of r.events) {
      this.line(`"Type" : ${EVENT_TYPES[e.type] ?? e.type}`);
      if (e.prevKv !== undefined) this.kv('Prev', e.prevKv);
      this.kv('', e.kv);
    }
  }

  override grant(r: LeaseGrantResponse): void {
    this.hdr(r.header);
    this.line(`"ID" : ${r.ID}`);
    this.line(`"TTL" : ${r.TTL}`);
  }

  override revoke(_id: bigint, r: LeaseRevokeResponse): void {
    this.hdr(r.header);
  }

  override keepAlive(r: LeaseKeepAliveResponse): void {
    this.hdr(r.header);
    this.line(`"ID" : ${r.ID}`);
    this.line(`"TTL" : ${r.TTL}`);
  }

  override timeToLive(r: LeaseTimeToLiveResponse): void {
    this.hdr(r.header);
    this.line(`"ID" : ${r.ID}`);
    this.line(`"TTL" : ${r.TTL}`);
    this.line(`"GrantedTTL" : ${r.grantedTTL}`);
    for (const k of r.keys) this.line(`"Key" : ${goQuote(k)}`);
  }

  override leases(r: LeaseLeasesResponse): void {
    this.hdr(r.header);
    for (const l of r.leases) this.line(`"ID" : ${l.ID}`);
  }

  override memberList(r: MemberListResponse): void {
    this.hdr(r.header);
    for (const m of r.members) {
      this.line(`"ID" : ${m.ID}`);
      this.line(`"Name" : ${goQuote(m.name)}`);
      for (const u of m.peerURLs) this.line(`"PeerURL" : ${goQuote(u)}`);
      for (const u of m.clientURLs) this.line(`"ClientURL" : ${goQuote(u)}`);
      this.line(`"IsLearner" : ${m.isLearner}`);
      this.line('');
    }
  }

  override endpointHealth(list: readonly EpHealth[]): void {
    for (const h of list) {
      this.line(`"Endpoint" : ${goQuote(h.ep)}`);
      this.line(`"Health" : ${h.health}`);
      this.line(`"Took" : ${h.took}`);
      this.line(`"Error" : ${h.error}`);
      this.line('');
    }
  }

  override endpointStatus(list: readonly EpStatus[]): void {
    for (const { ep, resp } of list) {
      this.hdr(resp.header);
      this.line(`"Version" : ${goQuote(resp.version)}`);
      this.line(`"DBSize" : ${resp.dbSize}`);
      this.line(`"Leader" : ${resp.leader}`);
      this.line(`"IsLearner" : ${resp.isLearner}`);
      this.line(`"RaftIndex" : ${resp.raftIndex}`);
      this.line(`"RaftTerm" : ${resp.raftTerm}`);
      this.line(`"RaftAppliedIndex" : ${resp.raftAppliedIndex}`);
      this.line(`"Errors" : ${goStringList(resp.errors)}`);
      this.line(`"Endpoint" : ${goQuote(ep)}`);
      this.line('');
    }
  }

  override endpointHashKV(list: readonly EpHashKV[]): void {
    for (const { ep, resp } of list) {
      this.hdr(resp.header);
      this.line(`"Endpoint" : ${goQuote(ep)}`);
      this.line(`"Hash" : ${resp.hash}`);
      this.line('');
    }
  }

  override alarm(r: AlarmResponse): void {
    this.hdr(r.header);
    for (const a of r.alarms) {
      this.line(`"MemberID" : ${a.memberID}`);
      this.line(`"AlarmType" : ${ALARM_TYPES[a.alarm] ?? a.alarm}`);
      this.line('');
    }
  }
}
