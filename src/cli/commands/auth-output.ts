/**
 * What the auth, user and role commands print, in each output format, as etcdctl 3.4's
 * printers do: simple (sentences), json and protobuf (the response message), fields (the
 * header, and the permissions of `role get` and names of `role list`; `user get` and
 * `user list` have none), table (none).
 */
import {
  type AuthRoleGetResponse,
  AuthRoleGetResponse as AuthRoleGetResponseCodec,
  AuthRoleListResponse,
  type AuthStatusResponse,
  AuthStatusResponse as AuthStatusResponseCodec,
  type AuthUserGetResponse,
  AuthUserGetResponse as AuthUserGetResponseCodec,
  AuthUserListResponse,
  type Permission,
  Permission_Type,
  type ResponseHeader,
} from '../../proto/index.ts';
import { CliExit, type CommandContext, ExitCode } from '../command.ts';
import { goJsonString, goQuote } from '../go-format.ts';
import { headerJson } from '../printers/json.ts';

/** A response with only a header, with its codec for the protobuf format. */
export interface HeaderOnly {
  header: ResponseHeader | undefined;
}

const PERM_NAMES = ['READ', 'WRITE', 'READWRITE'] as const;

/** The output format of --write-out (after ETCDCTL_* variables), checked as etcdctl checks it. */
function formatOf(ctx: CommandContext): string {
  ctx.printer();
  return ctx.flags.string('write-out');
}

function unsupported(format: string): never {
  throw new CliExit(ExitCode.BAD_FEATURE, `${format} not supported as output format`);
}

function line(ctx: CommandContext, text: string | Uint8Array): void {
  ctx.io.stdout.write(text);
  ctx.io.stdout.write('\n');
}

function fieldsHeader(ctx: CommandContext, h: ResponseHeader | undefined): void {
  line(ctx, `"ClusterID" : ${h?.clusterId ?? 0n}`);
  line(ctx, `"MemberID" : ${h?.memberId ?? 0n}`);
  line(ctx, `"Revision" : ${h?.revision ?? 0n}`);
  line(ctx, `"RaftTerm" : ${h?.raftTerm ?? 0n}`);
}

function jsonObject(fields: Array<[string, string | undefined]>): string {
  const parts: string[] = [];
  for (const [name, value] of fields) if (value !== undefined) parts.push(`"${name}":${value}`);
  return `{${parts.join(',')}}`;
}

function jsonBytes(b: Uint8Array): string | undefined {
  return b.length === 0 ? undefined : `"${Buffer.from(b).toString('base64')}"`;
}

function jsonStrings(items: readonly string[]): string | undefined {
  return items.length === 0 ? undefined : `[${items.map((s) => goJsonString(s)).join(',')}]`;
}

/**
 * A change's answer: `sentence` in the simple format, the header in the others (none in
 * table). `encode` gives the response's wire bytes for the protobuf format.
 */
export function printChange<T extends HeaderOnly>(
  ctx: CommandContext,
  sentence: string,
  resp: T,
  encode: (resp: T) => Uint8Array,
): void {
  const format = formatOf(ctx);
  switch (format) {
    case 'simple':
      line(ctx, sentence);
      return;
    case 'json':
      line(ctx, jsonObject([['header', headerJson(resp.header)]]));
      return;
    case 'protobuf':
      ctx.io.stdout.write(encode(resp));
      return;
    case 'fields':
      fieldsHeader(ctx, resp.header);
      return;
    default:
      unsupported(format);
  }
}

function permissionJson(p: Permission): string {
  return jsonObject([
    ['permType', p.permType === 0 ? undefined : String(p.permType)],
    ['key', jsonBytes(p.key)],
    ['range_end', jsonBytes(p.rangeEnd)],
  ]);
}

/** etcd's prefix range end of a key. */
function prefixEnd(key: Buffer): Buffer {
  for (let i = key.length - 1; i >= 0; i--) {
    if (key[i]! < 0xff) {
      const end = Buffer.from(key.subarray(0, i + 1));
      end[i] = key[i]! + 1;
      return end;
    }
  }
  return Buffer.from([0]);
}

/** The simple format of `role get`: the keys it may read, then write. */
function roleGetSimple(ctx: CommandContext, role: string, perms: readonly Permission[]): void {
  line(ctx, `Role ${role}`);
  const printPerm = (p: Permission) => {
    const key = Buffer.from(p.key);
    const end = Buffer.from(p.rangeEnd);
    if (end.length === 0) {
      ctx.io.stdout.write(Buffer.concat([Buffer.from('\t'), key, Buffer.from('\n')]));
      return;
    }
    const parts: Buffer[] = [Buffer.from('\t['), key];
    if (!(end.length === 1 && end[0] === 0)) parts.push(Buffer.from(', '), end, Buffer.from(')'));
    else parts.push(Buffer.from(', <open ended>'));
    if (prefixEnd(key).equals(end)) parts.push(Buffer.from(' (prefix '), key, Buffer.from(')'));
    parts.push(Buffer.from('\n'));
    ctx.io.stdout.write(Buffer.concat(parts));
  };
  line(ctx, 'KV Read:');
  for (const p of perms) {
    if (p.permType === Permission_Type.READ || p.permType === Permission_Type.READWRITE) printPerm(p);
  }
  line(ctx, 'KV Write:');
  for (const p of perms) {
    if (p.permType === Permission_Type.WRITE || p.permType === Permission_Type.READWRITE) printPerm(p);
  }
}

export function printRoleGet(ctx: CommandContext, role: string, resp: AuthRoleGetResponse): void {
  const format = formatOf(ctx);
  switch (format) {
    case 'simple':
      roleGetSimple(ctx, role, resp.perm);
      return;
    case 'json':
      line(
        ctx,
        jsonObject([
          ['header', headerJson(resp.header)],
          ['perm', resp.perm.length === 0 ? undefined : `[${resp.perm.map(permissionJson).join(',')}]`],
        ]),
      );
      return;
    case 'protobuf':
      ctx.io.stdout.write(AuthRoleGetResponseCodec.encode(resp).finish());
      return;
    case 'fields':
      fieldsHeader(ctx, resp.header);
      for (const p of resp.perm) {
        line(ctx, `"PermType" :  ${PERM_NAMES[p.permType] ?? p.permType}`);
        line(ctx, `"Key" : ${goQuote(p.key)}`);
        line(ctx, `"RangeEnd" : ${goQuote(p.rangeEnd)}`);
      }
      return;
    default:
      unsupported(format);
  }
}

export function printRoleList(ctx: CommandContext, resp: AuthRoleListResponse): void {
  const format = formatOf(ctx);
  switch (format) {
    case 'simple':
      for (const r of resp.roles) line(ctx, r);
      return;
    case 'json':
      line(
        ctx,
        jsonObject([
          ['header', headerJson(resp.header)],
          ['roles', jsonStrings(resp.roles)],
        ]),
      );
      return;
    case 'protobuf':
      ctx.io.stdout.write(AuthRoleListResponse.encode(resp).finish());
      return;
    case 'fields':
      fieldsHeader(ctx, resp.header);
      ctx.io.stdout.write(`"Roles" :${resp.roles.map((r) => ` ${goQuote(r)}`).join('')}\n`);
      return;
    default:
      unsupported(format);
  }
}

export function printUserGet(ctx: CommandContext, user: string, resp: AuthUserGetResponse): void {
  const format = formatOf(ctx);
  switch (format) {
    case 'simple':
      line(ctx, `User: ${user}`);
      line(ctx, `Roles:${resp.roles.map((r) => ` ${r}`).join('')}`);
      return;
    case 'json':
      line(
        ctx,
        jsonObject([
          ['header', headerJson(resp.header)],
          ['roles', jsonStrings(resp.roles)],
        ]),
      );
      return;
    case 'protobuf':
      ctx.io.stdout.write(AuthUserGetResponseCodec.encode(resp).finish());
      return;
    default:
      unsupported(format);
  }
}

export function printUserList(ctx: CommandContext, resp: AuthUserListResponse): void {
  const format = formatOf(ctx);
  switch (format) {
    case 'simple':
      for (const u of resp.users) line(ctx, u);
      return;
    case 'json':
      line(
        ctx,
        jsonObject([
          ['header', headerJson(resp.header)],
          ['users', jsonStrings(resp.users)],
        ]),
      );
      return;
    case 'protobuf':
      ctx.io.stdout.write(AuthUserListResponse.encode(resp).finish());
      return;
    default:
      unsupported(format);
  }
}

/** `auth status` (etcdctl 3.5). */
export function printAuthStatus(ctx: CommandContext, resp: AuthStatusResponse): void {
  const format = formatOf(ctx);
  switch (format) {
    case 'simple':
      line(ctx, `Authentication Status: ${resp.enabled}`);
      line(ctx, `AuthRevision: ${resp.authRevision}`);
      return;
    case 'json':
      line(
        ctx,
        jsonObject([
          ['header', headerJson(resp.header)],
          ['enabled', resp.enabled ? 'true' : undefined],
          ['authRevision', resp.authRevision === 0n ? undefined : String(resp.authRevision)],
        ]),
      );
      return;
    case 'protobuf':
      ctx.io.stdout.write(AuthStatusResponseCodec.encode(resp).finish());
      return;
    case 'fields':
      fieldsHeader(ctx, resp.header);
      line(ctx, `"Enabled" : ${resp.enabled}`);
      line(ctx, `"AuthRevision" : ${resp.authRevision}`);
      return;
    default:
      unsupported(format);
  }
}
