/** The simple format (etcdctl's printer_simple.go): raw keys and values, one per line. */
import type {
  AlarmResponse,
  DeleteRangeResponse,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseTimeToLiveResponse,
  MemberAddResponse,
  MemberListResponse,
  PutResponse,
  RangeResponse,
  TxnResponse,
} from '../../proto/index.ts';
import { hex16, hex016, humanizeBytes } from '../go-format.ts';
import {
  type EpHashKV,
  type EpHealth,
  type EpStatus,
  endpointHashKVRows,
  endpointStatusRows,
  type KvLike,
  memberListRows,
  type Printer,
  type PrinterOutput,
  type WatchView,
} from './printer.ts';

const EVENT_TYPES = ['PUT', 'DELETE'] as const;
const ALARM_TYPES = ['NONE', 'NOSPACE', 'CORRUPT'] as const;

/** A key or value as `\xNN` for every byte (etcdctl --hex). */
export function hexBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += `\\x${b.toString(16).padStart(2, '0')}`;
  return out;
}

export class SimplePrinter implements Printer {
  private readonly out: PrinterOutput;
  private readonly isHex: boolean;
  /** --print-value-only: values without their keys. */
  valueOnly = false;

  constructor(out: PrinterOutput, isHex: boolean) {
    this.out = out;
    this.isHex = isHex;
  }

  private line(text: string | Uint8Array): void {
    this.out.stdout.write(text);
    this.out.stdout.write('\n');
  }

  private kv(kv: KvLike | undefined): void {
    const key = kv?.key ?? new Uint8Array();
    const value = kv?.value ?? new Uint8Array();
    if (!this.valueOnly) this.line(this.isHex ? hexBytes(key) : key);
    this.line(this.isHex ? hexBytes(value) : value);
  }

  del(r: DeleteRangeResponse): void {
    this.line(String(r.deleted));
    for (const kv of r.prevKvs) this.kv(kv);
  }

  get(r: RangeResponse): void {
    for (const kv of r.kvs) this.kv(kv);
  }

  put(r: PutResponse): void {
    this.line('OK');
    if (r.prevKv !== undefined) this.kv(r.prevKv);
  }

  txn(r: TxnResponse): void {
    this.line(r.succeeded ? 'SUCCESS' : 'FAILURE');
    for (const op of r.responses) {
      this.line('');
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
          this.line('unexpected response');
      }
    }
  }

  watch(r: WatchView): void {
    for (const e of r.events) {
      this.line(EVENT_TYPES[e.type] ?? String(e.type));
      if (e.prevKv !== undefined) this.kv(e.prevKv);
      this.kv(e.kv);
    }
  }

  grant(r: LeaseGrantResponse): void {
    this.line(`lease ${hex016(r.ID)} granted with TTL(${r.TTL}s)`);
  }

  revoke(id: bigint): void {
    this.line(`lease ${hex016(id)} revoked`);
  }

  keepAlive(r: LeaseKeepAliveResponse): void {
    this.line(`lease ${hex016(r.ID)} keepalived with TTL(${r.TTL})`);
  }

  timeToLive(r: LeaseTimeToLiveResponse, keys: boolean): void {
    if (r.grantedTTL === 0n && r.TTL === -1n) {
      this.line(`lease ${hex016(r.ID)} already expired`);
      return;
    }
    let text = `lease ${hex016(r.ID)} granted with TTL(${r.grantedTTL}s), remaining(${r.TTL}s)`;
    if (keys) text += `, attached keys([${r.keys.map((k) => Buffer.from(k).toString('latin1')).join(' ')}])`;
    this.line(Buffer.from(text, 'latin1'));
  }

  leases(r: LeaseLeasesResponse): void {
    this.line(`found ${r.leases.length} leases`);
    for (const l of r.leases) this.line(hex016(l.ID));
  }

  memberAdd(r: MemberAddResponse): void {
    this.line(`Member ${hex16(r.member?.ID ?? 0n)} added to cluster ${hex16(r.header?.clusterId ?? 0n)}`);
  }

  memberRemove(id: bigint, r: { header: { clusterId: bigint } | undefined }): void {
    this.line(`Member ${hex16(id)} removed from cluster ${hex16(r.header?.clusterId ?? 0n)}`);
  }

  memberUpdate(id: bigint, r: { header: { clusterId: bigint } | undefined }): void {
    this.line(`Member ${hex16(id)} updated in cluster ${hex16(r.header?.clusterId ?? 0n)}`);
  }

  memberPromote(id: bigint, r: { header: { clusterId: bigint } | undefined }): void {
    this.line(`Member ${hex16(id)} promoted in cluster ${hex16(r.header?.clusterId ?? 0n)}`);
  }

  memberList(r: MemberListResponse): void {
    for (const row of memberListRows(r).rows) this.line(row.join(', '));
  }

  endpointHealth(list: readonly EpHealth[]): void {
    for (const h of list) {
      if (h.error === '') {
        this.out.stderr.write(`${h.ep} is healthy: successfully committed proposal: took = ${h.took}\n`);
      } else {
        this.out.stderr.write(`${h.ep} is unhealthy: failed to commit proposal: ${h.error}\n`);
      }
    }
  }

  endpointStatus(list: readonly EpStatus[]): void {
    for (const row of endpointStatusRows(list, humanizeBytes).rows) this.line(row.join(', '));
  }

  endpointHashKV(list: readonly EpHashKV[]): void {
    for (const row of endpointHashKVRows(list).rows) this.line(row.join(', '));
  }

  moveLeader(leader: bigint, target: bigint): void {
    this.line(`Leadership transferred from ${leader.toString(16)} to ${target.toString(16)}`);
  }

  alarm(r: AlarmResponse): void {
    for (const a of r.alarms) this.line(`memberID:${a.memberID} alarm:${ALARM_TYPES[a.alarm] ?? a.alarm} `);
  }
}
