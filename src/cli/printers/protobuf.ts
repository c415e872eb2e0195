/**
 * The protobuf format (etcdctl's printer_protobuf.go): the response message's wire bytes,
 * without a newline. As in etcdctl 3.4, the lease answers that clientv3 wraps around an
 * embedded header (grant, keep-alive, time-to-live, list) print only that header.
 */
import {
  AlarmResponse,
  DeleteRangeResponse,
  type Event_EventType,
  type LeaseGrantResponse,
  type LeaseKeepAliveResponse,
  type LeaseLeasesResponse,
  LeaseRevokeResponse,
  type LeaseTimeToLiveResponse,
  MemberAddResponse,
  MemberListResponse,
  MemberPromoteResponse,
  MemberRemoveResponse,
  MemberUpdateResponse,
  MoveLeaderResponse,
  PutResponse,
  RangeResponse,
  ResponseHeader,
  TxnResponse,
  WatchResponse,
} from '../../proto/index.ts';
import { type PrinterOutput, UnsupportedPrinter, type WatchView } from './printer.ts';

export class ProtobufPrinter extends UnsupportedPrinter {
  constructor(out: PrinterOutput) {
    super('protobuf', out);
  }

  private bytes(data: Uint8Array): void {
    this.out.stdout.write(data);
  }

  private header(h: ResponseHeader | undefined): void {
    this.bytes(ResponseHeader.encode(h ?? ResponseHeader.fromPartial({})).finish());
  }

  override del(r: DeleteRangeResponse): void {
    this.bytes(DeleteRangeResponse.encode(r).finish());
  }
  override get(r: RangeResponse): void {
    this.bytes(RangeResponse.encode(r).finish());
  }
  override put(r: PutResponse): void {
    this.bytes(PutResponse.encode(r).finish());
  }
  override txn(r: TxnResponse): void {
    this.bytes(TxnResponse.encode(r).finish());
  }
  override watch(r: WatchView): void {
    const message: WatchResponse = {
      header: r.header,
      watchId: 0n,
      created: r.created,
      canceled: r.canceled,
      compactRevision: r.compactRevision,
      cancelReason: '',
      fragment: false,
      events: r.events.map((e) => ({ type: e.type as Event_EventType, kv: e.kv, prevKv: e.prevKv })),
    };
    this.bytes(WatchResponse.encode(message).finish());
  }
  override grant(r: LeaseGrantResponse): void {
    this.header(r.header);
  }
  override revoke(_id: bigint, r: LeaseRevokeResponse): void {
    this.bytes(LeaseRevokeResponse.encode(r).finish());
  }
  override keepAlive(r: LeaseKeepAliveResponse): void {
    this.header(r.header);
  }
  override timeToLive(r: LeaseTimeToLiveResponse): void {
    this.header(r.header);
  }
  override leases(r: LeaseLeasesResponse): void {
    this.header(r.header);
  }
  override memberAdd(r: MemberAddResponse): void {
    this.bytes(MemberAddResponse.encode(r).finish());
  }
  override memberRemove(_id: bigint, r: MemberRemoveResponse): void {
    this.bytes(MemberRemoveResponse.encode(r).finish());
  }
  override memberUpdate(_id: bigint, r: MemberUpdateResponse): void {
    this.bytes(MemberUpdateResponse.encode(r).finish());
  }
  override memberPromote(_id: bigint, r: MemberPromoteResponse): void {
    this.bytes(MemberPromoteResponse.encode(r).finish());
  }
  override memberList(r: MemberListResponse): void {
    this.bytes(MemberListResponse.encode(r).finish());
  }
  override moveLeader(_leader: bigint, _target: bigint, r: MoveLeaderResponse): void {
    this.bytes(MoveLeaderResponse.encode(r).finish());
  }
  override alarm(r: AlarmResponse): void {
    this.bytes(AlarmResponse.encode(r).finish());
  }
}
