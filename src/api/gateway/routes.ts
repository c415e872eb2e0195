/**
 * The gateway's routes, as etcd's `google.api.http` annotations declare them (all POST): the
 * path under the API version prefix, the gRPC method behind it, how to read its request and how
 * to write its response. etcd 3.5's paths; `/v3/kv/lease/*` are the aliases etcd keeps for old
 * clients, and HashKV has its own path (etcd 3.4 mapped it onto `maintenance/hash` by mistake).
 */
import {
  AlarmResponse,
  type AnyMethod,
  AuthDisableResponse,
  AuthEnableResponse,
  AuthenticateResponse,
  AuthRoleAddResponse,
  AuthRoleDeleteResponse,
  AuthRoleGetResponse,
  AuthRoleGrantPermissionResponse,
  AuthRoleListResponse,
  AuthRoleRevokePermissionResponse,
  AuthService,
  AuthStatusResponse,
  AuthUserAddResponse,
  AuthUserChangePasswordResponse,
  AuthUserDeleteResponse,
  AuthUserGetResponse,
  AuthUserGrantRoleResponse,
  AuthUserListResponse,
  AuthUserRevokeRoleResponse,
  CampaignResponse,
  ClusterService,
  CompactionResponse,
  DefragmentResponse,
  DeleteRangeResponse,
  DowngradeResponse,
  ElectionService,
  HashKVResponse,
  HashResponse,
  KVService,
  LeaderResponse,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeResponse,
  LeaseService,
  LeaseTimeToLiveResponse,
  LockResponse,
  LockService,
  MaintenanceService,
  MemberAddResponse,
  MemberListResponse,
  MemberPromoteResponse,
  MemberRemoveResponse,
  MemberUpdateResponse,
  MoveLeaderResponse,
  ProclaimResponse,
  PutResponse,
  RangeResponse,
  ResignResponse,
  SnapshotResponse,
  StatusResponse,
  TxnResponse,
  UnlockResponse,
  WatchResponse,
  WatchService,
} from '../../proto/index.ts';
import * as M from './schema.ts';

export interface GatewayRoute {
  /** The path below the version prefix, e.g. `kv/range` for `/v3/kv/range`. */
  readonly path: string;
  readonly method: AnyMethod;
  readonly request: M.MessageSpec;
  /** The response as jsonpb writes it (proto field names, defaults left out). */
  readonly toJSON: (response: never) => unknown;
}

function route(path: string, method: AnyMethod, request: M.MessageSpec, toJSON: (r: never) => unknown): GatewayRoute {
  return Object.freeze({ path, method, request, toJSON });
}

/** The API version prefixes served: etcd 3.5's `/v3/`, 3.4's `/v3beta/`, 3.3's `/v3alpha/`. */
export const GATEWAY_PREFIXES: readonly string[] = Object.freeze(['/v3/', '/v3beta/', '/v3alpha/']);

export const GATEWAY_ROUTES: readonly GatewayRoute[] = Object.freeze([
  route('kv/range', KVService.Range, M.RANGE_REQUEST, RangeResponse.toJSON),
  route('kv/put', KVService.Put, M.PUT_REQUEST, PutResponse.toJSON),
  route('kv/deleterange', KVService.DeleteRange, M.DELETE_RANGE_REQUEST, DeleteRangeResponse.toJSON),
  route('kv/txn', KVService.Txn, M.TXN_REQUEST, TxnResponse.toJSON),
  route('kv/compaction', KVService.Compact, M.COMPACTION_REQUEST, CompactionResponse.toJSON),

  route('watch', WatchService.Watch, M.WATCH_REQUEST, WatchResponse.toJSON),

  route('lease/grant', LeaseService.LeaseGrant, M.LEASE_GRANT_REQUEST, LeaseGrantResponse.toJSON),
  route('lease/revoke', LeaseService.LeaseRevoke, M.LEASE_REVOKE_REQUEST, LeaseRevokeResponse.toJSON),
  route('kv/lease/revoke', LeaseService.LeaseRevoke, M.LEASE_REVOKE_REQUEST, LeaseRevokeResponse.toJSON),
  route('lease/keepalive', LeaseService.LeaseKeepAlive, M.LEASE_KEEP_ALIVE_REQUEST, LeaseKeepAliveResponse.toJSON),
  route('lease/timetolive', LeaseService.LeaseTimeToLive, M.LEASE_TIME_TO_LIVE_REQUEST, LeaseTimeToLiveResponse.toJSON),
  route(
    'kv/lease/timetolive',
    LeaseService.LeaseTimeToLive,
    M.LEASE_TIME_TO_LIVE_REQUEST,
    LeaseTimeToLiveResponse.toJSON,
  ),
  route('lease/leases', LeaseService.LeaseLeases, M.LEASE_LEASES_REQUEST, LeaseLeasesResponse.toJSON),
  route('kv/lease/leases', LeaseService.LeaseLeases, M.LEASE_LEASES_REQUEST, LeaseLeasesResponse.toJSON),

  route('cluster/member/add', ClusterService.MemberAdd, M.MEMBER_ADD_REQUEST, MemberAddResponse.toJSON),
  route('cluster/member/remove', ClusterService.MemberRemove, M.MEMBER_REMOVE_REQUEST, MemberRemoveResponse.toJSON),
  route('cluster/member/update', ClusterService.MemberUpdate, M.MEMBER_UPDATE_REQUEST, MemberUpdateResponse.toJSON),
  route('cluster/member/list', ClusterService.MemberList, M.MEMBER_LIST_REQUEST, MemberListResponse.toJSON),
  route('cluster/member/promote', ClusterService.MemberPromote, M.MEMBER_PROMOTE_REQUEST, MemberPromoteResponse.toJSON),

  route('maintenance/alarm', MaintenanceService.Alarm, M.ALARM_REQUEST, AlarmResponse.toJSON),
  route('maintenance/status', MaintenanceService.Status, M.STATUS_REQUEST, StatusResponse.toJSON),
  route('maintenance/defragment', MaintenanceService.Defragment, M.DEFRAGMENT_REQUEST, DefragmentResponse.toJSON),
  route('maintenance/hash', MaintenanceService.Hash, M.HASH_REQUEST, HashResponse.toJSON),
  route('maintenance/hashkv', MaintenanceService.HashKV, M.HASH_KV_REQUEST, HashKVResponse.toJSON),
  route('maintenance/snapshot', MaintenanceService.Snapshot, M.SNAPSHOT_REQUEST, SnapshotResponse.toJSON),
  route(
    'maintenance/transfer-leadership',
    MaintenanceService.MoveLeader,
    M.MOVE_LEADER_REQUEST,
    MoveLeaderResponse.toJSON,
  ),
  route('maintenance/downgrade', MaintenanceService.Downgrade, M.DOWNGRADE_REQUEST, DowngradeResponse.toJSON),

  route('auth/enable', AuthService.AuthEnable, M.AUTH_ENABLE_REQUEST, AuthEnableResponse.toJSON),
  route('auth/disable', AuthService.AuthDisable, M.AUTH_DISABLE_REQUEST, AuthDisableResponse.toJSON),
  route('auth/status', AuthService.AuthStatus, M.AUTH_STATUS_REQUEST, AuthStatusResponse.toJSON),
  route('auth/authenticate', AuthService.Authenticate, M.AUTHENTICATE_REQUEST, AuthenticateResponse.toJSON),
  route('auth/user/add', AuthService.UserAdd, M.AUTH_USER_ADD_REQUEST, AuthUserAddResponse.toJSON),
  route('auth/user/get', AuthService.UserGet, M.AUTH_USER_GET_REQUEST, AuthUserGetResponse.toJSON),
  route('auth/user/list', AuthService.UserList, M.AUTH_USER_LIST_REQUEST, AuthUserListResponse.toJSON),
  route('auth/user/delete', AuthService.UserDelete, M.AUTH_USER_DELETE_REQUEST, AuthUserDeleteResponse.toJSON),
  route(
    'auth/user/changepw',
    AuthService.UserChangePassword,
    M.AUTH_USER_CHANGE_PASSWORD_REQUEST,
    AuthUserChangePasswordResponse.toJSON,
  ),
  route('auth/user/grant', AuthService.UserGrantRole, M.AUTH_USER_GRANT_ROLE_REQUEST, AuthUserGrantRoleResponse.toJSON),
  route(
    'auth/user/revoke',
    AuthService.UserRevokeRole,
    M.AUTH_USER_REVOKE_ROLE_REQUEST,
    AuthUserRevokeRoleResponse.toJSON,
  ),
  route('auth/role/add', AuthService.RoleAdd, M.AUTH_ROLE_ADD_REQUEST, AuthRoleAddResponse.toJSON),
  route('auth/role/get', AuthService.RoleGet, M.AUTH_ROLE_GET_REQUEST, AuthRoleGetResponse.toJSON),
  route('auth/role/list', AuthService.RoleList, M.AUTH_ROLE_LIST_REQUEST, AuthRoleListResponse.toJSON),
  route('auth/role/delete', AuthService.RoleDelete, M.AUTH_ROLE_DELETE_REQUEST, AuthRoleDeleteResponse.toJSON),
  route(
    'auth/role/grant',
    AuthService.RoleGrantPermission,
    M.AUTH_ROLE_GRANT_PERMISSION_REQUEST,
    AuthRoleGrantPermissionResponse.toJSON,
  ),
  route(
    'auth/role/revoke',
    AuthService.RoleRevokePermission,
    M.AUTH_ROLE_REVOKE_PERMISSION_REQUEST,
    AuthRoleRevokePermissionResponse.toJSON,
  ),

  route('lock/lock', LockService.Lock, M.LOCK_REQUEST, LockResponse.toJSON),
  route('lock/unlock', LockService.Unlock, M.UNLOCK_REQUEST, UnlockResponse.toJSON),

  route('election/campaign', ElectionService.Campaign, M.CAMPAIGN_REQUEST, CampaignResponse.toJSON),
  route('election/proclaim', ElectionService.Proclaim, M.PROCLAIM_REQUEST, ProclaimResponse.toJSON),
  route('election/leader', ElectionService.Leader, M.LEADER_REQUEST, LeaderResponse.toJSON),
  route('election/observe', ElectionService.Observe, M.LEADER_REQUEST, LeaderResponse.toJSON),
  route('election/resign', ElectionService.Resign, M.RESIGN_REQUEST, ResignResponse.toJSON),
]);
