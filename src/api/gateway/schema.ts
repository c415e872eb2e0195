/**
 * The request messages the gateway reads from JSON, described field by field: the proto name
 * and its lowerCamelCase JSON name (jsonpb accepts both), the type as jsonpb sees it, and the
 * key of the ts-proto message it fills. Go type names appear in jsonpb's error messages, so
 * enums carry theirs. The table is checked against the .proto files in test/http/.
 */
import {
  AlarmRequest_AlarmAction,
  AlarmType,
  Compare_CompareResult,
  Compare_CompareTarget,
  DowngradeRequest_DowngradeAction,
  Permission_Type,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  WatchCreateRequest_FilterType,
} from '../../proto/index.ts';

export const ScalarType = {
  String: 'string',
  Bytes: 'bytes',
  Bool: 'bool',
  Int64: 'int64',
  Uint64: 'uint64',
  Int32: 'int32',
  Uint32: 'uint32',
} as const;
export type ScalarType = (typeof ScalarType)[keyof typeof ScalarType];

export interface EnumSpec {
  readonly kind: 'enum';
  /** The proto name, e.g. `etcdserverpb.RangeRequest.SortOrder`. */
  readonly protoName: string;
  /** The Go type (and registered enum) name jsonpb's errors use, e.g. `etcdserverpb.RangeRequest_SortOrder`. */
  readonly goName: string;
  readonly values: Readonly<Record<string, number>>;
}

export interface FieldSpec {
  /** The field's name in the .proto file (`range_end`). */
  readonly name: string;
  /** Its JSON name (`rangeEnd`), which is also the ts-proto key. */
  readonly json: string;
  readonly number: number;
  /** A scalar, an enum, or the message it holds (a thunk: messages may refer to each other). */
  readonly type: ScalarType | EnumSpec | (() => MessageSpec);
  readonly repeated: boolean;
  /** The ts-proto key of the oneof this field belongs to (`request`), if any. */
  readonly oneof: string | undefined;
}

export interface MessageSpec {
  /** The proto name, e.g. `etcdserverpb.RangeRequest`. */
  readonly protoName: string;
  /** Regular fields first, then oneof members: the order jsonpb reads them in. */
  readonly fields: readonly FieldSpec[];
}

/** protoc's JSON name: underscores dropped, the letter after each one upper-cased. */
export function jsonName(protoName: string): string {
  return protoName.replace(/_([a-zA-Z0-9])/g, (_m, c: string) => c.toUpperCase());
}

type FieldType = FieldSpec['type'];
type FieldRow = readonly [name: string, number: number, type: FieldType, flags?: { repeated?: true; oneof?: string }];

function message(protoName: string, rows: readonly FieldRow[]): MessageSpec {
  const fields = rows.map(
    ([name, number, type, flags]): FieldSpec => ({
      name,
      json: jsonName(name),
      number,
      type,
      repeated: flags?.repeated === true,
      oneof: flags?.oneof,
    }),
  );
  // jsonpb reads the struct's own fields before the oneof wrappers.
  return Object.freeze({
    protoName,
    fields: Object.freeze([...fields.filter((f) => f.oneof === undefined), ...fields.filter((f) => f.oneof)]),
  });
}

function enumType(protoName: string, values: Readonly<Record<string, number>>): EnumSpec {
  const dot = protoName.indexOf('.');
  const goName = `${protoName.slice(0, dot)}.${protoName.slice(dot + 1).replaceAll('.', '_')}`;
  return Object.freeze({ kind: 'enum', protoName, goName, values });
}

const S = ScalarType;
const REPEATED = { repeated: true } as const;

const SORT_ORDER = enumType('etcdserverpb.RangeRequest.SortOrder', RangeRequest_SortOrder);
const SORT_TARGET = enumType('etcdserverpb.RangeRequest.SortTarget', RangeRequest_SortTarget);
const COMPARE_RESULT = enumType('etcdserverpb.Compare.CompareResult', Compare_CompareResult);
const COMPARE_TARGET = enumType('etcdserverpb.Compare.CompareTarget', Compare_CompareTarget);
const FILTER_TYPE = enumType('etcdserverpb.WatchCreateRequest.FilterType', WatchCreateRequest_FilterType);
const ALARM_ACTION = enumType('etcdserverpb.AlarmRequest.AlarmAction', AlarmRequest_AlarmAction);
const ALARM_TYPE = enumType('etcdserverpb.AlarmType', AlarmType);
const DOWNGRADE_ACTION = enumType('etcdserverpb.DowngradeRequest.DowngradeAction', DowngradeRequest_DowngradeAction);
const PERMISSION_TYPE = enumType('authpb.Permission.Type', Permission_Type);

// ---- KV ----

export const RANGE_REQUEST = message('etcdserverpb.RangeRequest', [
  ['key', 1, S.Bytes],
  ['range_end', 2, S.Bytes],
  ['limit', 3, S.Int64],
  ['revision', 4, S.Int64],
  ['sort_order', 5, SORT_ORDER],
  ['sort_target', 6, SORT_TARGET],
  ['serializable', 7, S.Bool],
  ['keys_only', 8, S.Bool],
  ['count_only', 9, S.Bool],
  ['min_mod_revision', 10, S.Int64],
  ['max_mod_revision', 11, S.Int64],
  ['min_create_revision', 12, S.Int64],
  ['max_create_revision', 13, S.Int64],
]);

export const PUT_REQUEST = message('etcdserverpb.PutRequest', [
  ['key', 1, S.Bytes],
  ['value', 2, S.Bytes],
  ['lease', 3, S.Int64],
  ['prev_kv', 4, S.Bool],
  ['ignore_value', 5, S.Bool],
  ['ignore_lease', 6, S.Bool],
]);

export const DELETE_RANGE_REQUEST = message('etcdserverpb.DeleteRangeRequest', [
  ['key', 1, S.Bytes],
  ['range_end', 2, S.Bytes],
  ['prev_kv', 3, S.Bool],
]);

const REQUEST = { oneof: 'request' } as const;
export const REQUEST_OP: MessageSpec = message('etcdserverpb.RequestOp', [
  ['request_range', 1, () => RANGE_REQUEST, REQUEST],
  ['request_put', 2, () => PUT_REQUEST, REQUEST],
  ['request_delete_range', 3, () => DELETE_RANGE_REQUEST, REQUEST],
  ['request_txn', 4, () => TXN_REQUEST, REQUEST],
]);

const TARGET_UNION = { oneof: 'targetUnion' } as const;
export const COMPARE = message('etcdserverpb.Compare', [
  ['result', 1, COMPARE_RESULT],
  ['target', 2, COMPARE_TARGET],
  ['key', 3, S.Bytes],
  ['version', 4, S.Int64, TARGET_UNION],
  ['create_revision', 5, S.Int64, TARGET_UNION],
  ['mod_revision', 6, S.Int64, TARGET_UNION],
  ['value', 7, S.Bytes, TARGET_UNION],
  ['lease', 8, S.Int64, TARGET_UNION],
  ['range_end', 64, S.Bytes],
]);

export const TXN_REQUEST: MessageSpec = message('etcdserverpb.TxnRequest', [
  ['compare', 1, () => COMPARE, REPEATED],
  ['success', 2, () => REQUEST_OP, REPEATED],
  ['failure', 3, () => REQUEST_OP, REPEATED],
]);

export const COMPACTION_REQUEST = message('etcdserverpb.CompactionRequest', [
  ['revision', 1, S.Int64],
  ['physical', 2, S.Bool],
]);

// ---- Watch ----

export const WATCH_CREATE_REQUEST = message('etcdserverpb.WatchCreateRequest', [
  ['key', 1, S.Bytes],
  ['range_end', 2, S.Bytes],
  ['start_revision', 3, S.Int64],
  ['progress_notify', 4, S.Bool],
  ['filters', 5, FILTER_TYPE, REPEATED],
  ['prev_kv', 6, S.Bool],
  ['watch_id', 7, S.Int64],
  ['fragment', 8, S.Bool],
]);

export const WATCH_CANCEL_REQUEST = message('etcdserverpb.WatchCancelRequest', [['watch_id', 1, S.Int64]]);
export const WATCH_PROGRESS_REQUEST = message('etcdserverpb.WatchProgressRequest', []);

const REQUEST_UNION = { oneof: 'requestUnion' } as const;
export const WATCH_REQUEST = message('etcdserverpb.WatchRequest', [
  ['create_request', 1, () => WATCH_CREATE_REQUEST, REQUEST_UNION],
  ['cancel_request', 2, () => WATCH_CANCEL_REQUEST, REQUEST_UNION],
  ['progress_request', 3, () => WATCH_PROGRESS_REQUEST, REQUEST_UNION],
]);

// ---- Lease ----

export const LEASE_GRANT_REQUEST = message('etcdserverpb.LeaseGrantRequest', [
  ['TTL', 1, S.Int64],
  ['ID', 2, S.Int64],
]);
export const LEASE_REVOKE_REQUEST = message('etcdserverpb.LeaseRevokeRequest', [['ID', 1, S.Int64]]);
export const LEASE_KEEP_ALIVE_REQUEST = message('etcdserverpb.LeaseKeepAliveRequest', [['ID', 1, S.Int64]]);
export const LEASE_TIME_TO_LIVE_REQUEST = message('etcdserverpb.LeaseTimeToLiveRequest', [
  ['ID', 1, S.Int64],
  ['keys', 2, S.Bool],
]);
export const LEASE_LEASES_REQUEST = message('etcdserverpb.LeaseLeasesRequest', []);

// ---- Cluster ----

export const MEMBER_ADD_REQUEST = message('etcdserverpb.MemberAddRequest', [
  ['peerURLs', 1, S.String, REPEATED],
  ['isLearner', 2, S.Bool],
]);
export const MEMBER_REMOVE_REQUEST = message('etcdserverpb.MemberRemoveRequest', [['ID', 1, S.Uint64]]);
export const MEMBER_UPDATE_REQUEST = message('etcdserverpb.MemberUpdateRequest', [
  ['ID', 1, S.Uint64],
  ['peerURLs', 2, S.String, REPEATED],
]);
export const MEMBER_LIST_REQUEST = message('etcdserverpb.MemberListRequest', [['linearizable', 1, S.Bool]]);
export const MEMBER_PROMOTE_REQUEST = message('etcdserverpb.MemberPromoteRequest', [['ID', 1, S.Uint64]]);

// ---- Maintenance ----

export const ALARM_REQUEST = message('etcdserverpb.AlarmRequest', [
  ['action', 1, ALARM_ACTION],
  ['memberID', 2, S.Uint64],
  ['alarm', 3, ALARM_TYPE],
]);
export const STATUS_REQUEST = message('etcdserverpb.StatusRequest', []);
export const DEFRAGMENT_REQUEST = message('etcdserverpb.DefragmentRequest', []);
export const HASH_REQUEST = message('etcdserverpb.HashRequest', []);
export const HASH_KV_REQUEST = message('etcdserverpb.HashKVRequest', [['revision', 1, S.Int64]]);
export const SNAPSHOT_REQUEST = message('etcdserverpb.SnapshotRequest', []);
export const MOVE_LEADER_REQUEST = message('etcdserverpb.MoveLeaderRequest', [['targetID', 1, S.Uint64]]);
export const DOWNGRADE_REQUEST = message('etcdserverpb.DowngradeRequest', [
  ['action', 1, DOWNGRADE_ACTION],
  ['version', 2, S.String],
]);

// ---- Auth ----

const USER_ADD_OPTIONS = message('authpb.UserAddOptions', [['no_password', 1, S.Bool]]);
const PERMISSION = message('authpb.Permission', [
  ['permType', 1, PERMISSION_TYPE],
  ['key', 2, S.Bytes],
  ['range_end', 3, S.Bytes],
]);

export const AUTH_ENABLE_REQUEST = message('etcdserverpb.AuthEnableRequest', []);
export const AUTH_DISABLE_REQUEST = message('etcdserverpb.AuthDisableRequest', []);
export const AUTH_STATUS_REQUEST = message('etcdserverpb.AuthStatusRequest', []);
export const AUTHENTICATE_REQUEST = message('etcdserverpb.AuthenticateRequest', [
  ['name', 1, S.String],
  ['password', 2, S.String],
]);
export const AUTH_USER_ADD_REQUEST = message('etcdserverpb.AuthUserAddRequest', [
  ['name', 1, S.String],
  ['password', 2, S.String],
  ['options', 3, () => USER_ADD_OPTIONS],
  ['hashedPassword', 4, S.String],
]);
export const AUTH_USER_GET_REQUEST = message('etcdserverpb.AuthUserGetRequest', [['name', 1, S.String]]);
export const AUTH_USER_DELETE_REQUEST = message('etcdserverpb.AuthUserDeleteRequest', [['name', 1, S.String]]);
export const AUTH_USER_CHANGE_PASSWORD_REQUEST = message('etcdserverpb.AuthUserChangePasswordRequest', [
  ['name', 1, S.String],
  ['password', 2, S.String],
  ['hashedPassword', 3, S.String],
]);
export const AUTH_USER_GRANT_ROLE_REQUEST = message('etcdserverpb.AuthUserGrantRoleRequest', [
  ['user', 1, S.String],
  ['role', 2, S.String],
]);
export const AUTH_USER_REVOKE_ROLE_REQUEST = message('etcdserverpb.AuthUserRevokeRoleRequest', [
  ['name', 1, S.String],
  ['role', 2, S.String],
]);
export const AUTH_ROLE_ADD_REQUEST = message('etcdserverpb.AuthRoleAddRequest', [['name', 1, S.String]]);
export const AUTH_ROLE_GET_REQUEST = message('etcdserverpb.AuthRoleGetRequest', [['role', 1, S.String]]);
export const AUTH_USER_LIST_REQUEST = message('etcdserverpb.AuthUserListRequest', []);
export const AUTH_ROLE_LIST_REQUEST = message('etcdserverpb.AuthRoleListRequest', []);
export const AUTH_ROLE_DELETE_REQUEST = message('etcdserverpb.AuthRoleDeleteRequest', [['role', 1, S.String]]);
export const AUTH_ROLE_GRANT_PERMISSION_REQUEST = message('etcdserverpb.AuthRoleGrantPermissionRequest', [
  ['name', 1, S.String],
  ['perm', 2, () => PERMISSION],
]);
export const AUTH_ROLE_REVOKE_PERMISSION_REQUEST = message('etcdserverpb.AuthRoleRevokePermissionRequest', [
  ['role', 1, S.String],
  ['key', 2, S.Bytes],
  ['range_end', 3, S.Bytes],
]);

// ---- Lock and Election ----

export const LOCK_REQUEST = message('v3lockpb.LockRequest', [
  ['name', 1, S.Bytes],
  ['lease', 2, S.Int64],
]);
export const UNLOCK_REQUEST = message('v3lockpb.UnlockRequest', [['key', 1, S.Bytes]]);

const LEADER_KEY = message('v3electionpb.LeaderKey', [
  ['name', 1, S.Bytes],
  ['key', 2, S.Bytes],
  ['rev', 3, S.Int64],
  ['lease', 4, S.Int64],
]);
export const CAMPAIGN_REQUEST = message('v3electionpb.CampaignRequest', [
  ['name', 1, S.Bytes],
  ['lease', 2, S.Int64],
  ['value', 3, S.Bytes],
]);
export const PROCLAIM_REQUEST = message('v3electionpb.ProclaimRequest', [
  ['leader', 1, () => LEADER_KEY],
  ['value', 2, S.Bytes],
]);
export const LEADER_REQUEST = message('v3electionpb.LeaderRequest', [['name', 1, S.Bytes]]);
export const RESIGN_REQUEST = message('v3electionpb.ResignRequest', [['leader', 1, () => LEADER_KEY]]);
