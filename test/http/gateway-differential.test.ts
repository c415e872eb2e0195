/**
 * The JSON gateway against the real etcd: the same HTTP requests go to an etcd 3.4 and to
 * etcd-ts, both fresh, in the same order, and the answers must match: status, content type and
 * body, once the header fields that differ between two clusters (cluster id, member id, raft
 * term) and the values that legitimately differ (member ids and URLs, versions, sizes, lease
 * TTLs counting down) are removed. Error bodies, including Go's JSON decoding errors, are
 * compared as they are.
 *
 * Where etcd 3.5 (the API etcd-ts speaks) answers otherwise than 3.4 the case says so and
 * checks etcd-ts against 3.5's behaviour instead.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Member, MemberKind } from '../helpers/member.ts';
import { b64, type HttpAnswer, LineStream, normalize, post, send } from './http-client.ts';

/** A lease id above 2^53: it must survive JSON as a number and as a string. */
const BIG_LEASE_ID = '7587869213578283011';

interface Case {
  readonly name: string;
  readonly path: string;
  readonly body: string;
  /** Fields removed anywhere in the body before comparing. */
  readonly drop?: readonly string[];
  /** Compares the `leases` list as a set (see KNOWN_DIFFERENCES). */
  readonly leasesAsSet?: true;
}

// Two differences come from the gRPC services behind the gateway, not from the gateway (which
// only translates: they show over gRPC as well), and are compared in a weaker form:
// - LeaseLeases: etcd lists leases by expiry, etcd-ts by id (the list is compared as a set);
// - MemberList: etcd leaves the revision out of the header, etcd-ts sets it (dropped).

const FOO = b64('foo');
const BAR = b64('bar');

/** Requests that answer the same on both servers, in order (later ones see earlier writes). */
const CASES: readonly Case[] = [
  { name: 'put', path: '/v3/kv/put', body: `{"key":"${FOO}","value":"${BAR}"}` },
  { name: 'range', path: '/v3/kv/range', body: `{"key":"${FOO}"}` },
  { name: 'put prev_kv', path: '/v3/kv/put', body: `{"key":"${FOO}","value":"${b64('baz')}","prev_kv":true}` },
  { name: 'put a', path: '/v3/kv/put', body: `{"key":"${b64('a')}","value":"${b64('1')}"}` },
  { name: 'put b', path: '/v3/kv/put', body: `{"key":"${b64('b')}","value":"${b64('2')}"}` },
  {
    name: 'range camelCase names, enum names, quoted int64',
    path: '/v3/kv/range',
    body: `{"key":"${b64('a')}","rangeEnd":"${b64('c')}","sortOrder":"DESCEND","sort_target":"KEY","limit":"1"}`,
  },
  {
    name: 'range enum numbers',
    path: '/v3/kv/range',
    body: `{"key":"AA==","range_end":"AA==","sort_order":2,"sort_target":4}`,
  },
  { name: 'range count_only', path: '/v3/kv/range', body: `{"key":"AA==","range_end":"AA==","count_only":true}` },
  { name: 'range keys_only', path: '/v3/kv/range', body: `{"key":"AA==","range_end":"AA==","keys_only":true}` },
  { name: 'range missing key', path: '/v3/kv/range', body: `{"key":"${b64('nope')}"}` },
  {
    name: 'range unknown fields ignored, trailing text ignored',
    path: '/v3/kv/range',
    body: `{"key":"${FOO}","bogus":[1,{}]} tail`,
  },
  { name: 'range null fields', path: '/v3/kv/range', body: `{"key":"${FOO}","limit":null,"serializable":null}` },
  {
    name: 'txn success with nested responses',
    path: '/v3/kv/txn',
    body: JSON.stringify({
      compare: [{ key: FOO, result: 'EQUAL', target: 'VALUE', value: b64('baz') }],
      success: [
        { request_put: { key: b64('t'), value: b64('x') } },
        { request_range: { key: FOO } },
        { request_delete_range: { key: b64('a') } },
      ],
      failure: [],
    }),
  },
  {
    name: 'txn failure path (camelCase oneof names)',
    path: '/v3/kv/txn',
    body: JSON.stringify({
      compare: [{ key: FOO, target: 'CREATE', createRevision: 0 }],
      success: [{ requestPut: { key: FOO, value: BAR } }],
      failure: [{ requestRange: { key: b64('t') } }],
    }),
  },
  {
    name: 'txn nested txn',
    path: '/v3/kv/txn',
    body: JSON.stringify({ success: [{ request_txn: { success: [{ request_range: { key: FOO } }] } }] }),
  },
  { name: 'deleterange prev_kv', path: '/v3/kv/deleterange', body: `{"key":"${b64('b')}","prev_kv":true}` },
  { name: 'deleterange nothing', path: '/v3/kv/deleterange', body: `{"key":"${b64('zz')}"}` },
  { name: 'compaction', path: '/v3/kv/compaction', body: '{"revision":"3"}' },
  { name: 'compaction again (compacted)', path: '/v3/kv/compaction', body: '{"revision":3}' },
  { name: 'compaction future', path: '/v3/kv/compaction', body: '{"revision":1000}' },
  { name: 'range compacted revision', path: '/v3/kv/range', body: `{"key":"${FOO}","revision":2}` },
  { name: 'range future revision', path: '/v3/kv/range', body: `{"key":"${FOO}","revision":1000}` },
  { name: 'v3beta prefix', path: '/v3beta/kv/range', body: `{"key":"${FOO}"}` },

  // Errors of the server
  { name: 'range without key', path: '/v3/kv/range', body: '' },
  { name: 'put without key', path: '/v3/kv/put', body: '{}' },
  {
    name: 'txn duplicate key',
    path: '/v3/kv/txn',
    body: JSON.stringify({ success: [{ request_put: { key: FOO } }, { request_put: { key: FOO } }] }),
  },
  { name: 'put with a missing lease', path: '/v3/kv/put', body: `{"key":"${FOO}","lease":"12345"}` },

  // Errors of the JSON decoding (Go's messages)
  { name: 'number for bytes', path: '/v3/kv/range', body: '{"key":123}' },
  { name: 'bad base64', path: '/v3/kv/range', body: '{"key":"!!"}' },
  { name: 'base64 without padding', path: '/v3/kv/range', body: '{"key":"Zm9"}' },
  { name: 'base64 bad padding', path: '/v3/kv/range', body: '{"key":"Zg=x"}' },
  { name: 'base64 trailing bytes', path: '/v3/kv/range', body: '{"key":"Zg==Zg=="}' },
  { name: 'url-safe base64', path: '/v3/kv/range', body: '{"key":"-_8="}' },
  { name: 'quoted int64 not a number', path: '/v3/kv/range', body: `{"key":"${FOO}","limit":"x"}` },
  { name: 'quoted int64 empty', path: '/v3/kv/range', body: `{"key":"${FOO}","limit":""}` },
  { name: 'fraction for int64', path: '/v3/kv/range', body: `{"key":"${FOO}","limit":1.5}` },
  { name: 'exponent for int64', path: '/v3/kv/range', body: `{"key":"${FOO}","limit":1e3}` },
  { name: 'int64 overflow', path: '/v3/kv/range', body: `{"key":"${FOO}","revision":99999999999999999999}` },
  { name: 'bool for int64', path: '/v3/kv/range', body: `{"key":"${FOO}","limit":true}` },
  { name: 'string for bool', path: '/v3/kv/range', body: `{"key":"${FOO}","serializable":"true"}` },
  { name: 'number for bool', path: '/v3/kv/range', body: `{"key":"${FOO}","serializable":1}` },
  { name: 'unknown enum name', path: '/v3/kv/range', body: `{"key":"${FOO}","sort_order":"UP"}` },
  { name: 'fraction for enum', path: '/v3/kv/range', body: `{"key":"${FOO}","sort_order":1.5}` },
  { name: 'array body', path: '/v3/kv/range', body: '[]' },
  { name: 'string body', path: '/v3/kv/range', body: '"x"' },
  { name: 'not JSON', path: '/v3/kv/range', body: 'xx' },
  { name: 'truncated JSON', path: '/v3/kv/range', body: `{"key":"${FOO}"` },
  { name: 'missing value', path: '/v3/kv/range', body: '{"key":}' },
  { name: 'missing colon', path: '/v3/kv/range', body: '{"key" 1}' },
  { name: 'missing comma', path: '/v3/kv/range', body: '{"key":"Zm9v" "a":1}' },
  { name: 'trailing comma', path: '/v3/kv/range', body: '{"key":"Zm9v",}' },
  { name: 'bad literal', path: '/v3/kv/range', body: '{"key":"Zm9v","serializable":tru}' },
  { name: 'bad escape', path: '/v3/kv/range', body: '{"key":"\\x"}' },
  { name: 'control character in string', path: '/v3/kv/range', body: '{"key":"a\nb"}' },
  { name: 'object for repeated', path: '/v3/kv/txn', body: '{"compare":{}}' },
  { name: 'number for message', path: '/v3/kv/txn', body: '{"success":[{"request_put":5}]}' },
  { name: 'number for string', path: '/v3/cluster/member/add', body: '{"peerURLs":[5]}' },
  { name: 'negative uint64', path: '/v3/cluster/member/remove', body: '{"ID":-1}' },

  // Leases
  { name: 'lease grant, id above 2^53 as a number', path: '/v3/lease/grant', body: `{"TTL":60,"ID":${BIG_LEASE_ID}}` },
  { name: 'lease grant existing id', path: '/v3/lease/grant', body: `{"TTL":60,"ID":"${BIG_LEASE_ID}"}` },
  { name: 'lease grant 2', path: '/v3/lease/grant', body: '{"TTL":"30","ID":"1000"}' },
  { name: 'put with lease', path: '/v3/kv/put', body: `{"key":"${b64('leased')}","value":"${BAR}","lease":"1000"}` },
  {
    name: 'lease timetolive with keys',
    path: '/v3/kv/lease/timetolive',
    body: '{"ID":1000,"keys":true}',
    drop: ['TTL'],
  },
  { name: 'lease timetolive missing', path: '/v3/lease/timetolive', body: '{"ID":1001}' },
  { name: 'lease leases', path: '/v3/lease/leases', body: '{}', leasesAsSet: true },
  { name: 'lease leases alias', path: '/v3/kv/lease/leases', body: '{}', leasesAsSet: true },
  { name: 'lease revoke', path: '/v3/kv/lease/revoke', body: '{"ID":"1000"}' },
  { name: 'lease revoke missing', path: '/v3/lease/revoke', body: '{"ID":1000}' },
  { name: 'lease key gone with the lease', path: '/v3/kv/range', body: `{"key":"${b64('leased')}"}` },

  // Locks and elections
  { name: 'lease for locks', path: '/v3/lease/grant', body: '{"TTL":60,"ID":"555"}' },
  { name: 'lock', path: '/v3/lock/lock', body: `{"name":"${b64('m2')}","lease":"555"}` },
  { name: 'leader of an empty election', path: '/v3/election/leader', body: `{"name":"${b64('el')}"}` },
  {
    name: 'campaign',
    path: '/v3/election/campaign',
    body: `{"name":"${b64('el')}","lease":"555","value":"${b64('v1')}"}`,
  },
  { name: 'leader', path: '/v3/election/leader', body: `{"name":"${b64('el')}"}` },
  { name: 'unlock', path: '/v3/lock/unlock', body: `{"key":"${b64('m2/22b')}"}` },

  // Cluster and maintenance errors
  { name: 'member remove missing', path: '/v3/cluster/member/remove', body: '{"ID":5}' },
  {
    name: 'member update missing',
    path: '/v3/cluster/member/update',
    body: '{"ID":5,"peerURLs":["http://127.0.0.1:1"]}',
  },
  { name: 'member promote missing', path: '/v3/cluster/member/promote', body: '{"ID":5}' },
  { name: 'member add bad URL', path: '/v3/cluster/member/add', body: '{"peerURLs":["bad"]}' },
  { name: 'transfer leadership to a stranger', path: '/v3/maintenance/transfer-leadership', body: '{"targetID":"1"}' },
];

interface Pair {
  readonly etcd: string;
  readonly ours: string;
}

function headerOf(answer: HttpAnswer, name: string): string | undefined {
  const v = answer.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** What is compared of an answer: status, content type, CORS origin and the (normalised) body. */
function comparable(answer: HttpAnswer, drop: readonly string[] = [], leasesAsSet = false): unknown {
  const type = headerOf(answer, 'content-type');
  let body: unknown = answer.body;
  if (type === 'application/json' && answer.body !== '') body = normalize(answer.body, drop);
  if (leasesAsSet && body !== null && typeof body === 'object' && 'leases' in body) {
    const leases = (body as { leases: { ID: string }[] }).leases;
    leases.sort((x, y) => (BigInt(x.ID) < BigInt(y.ID) ? -1 : 1));
  }
  return {
    status: answer.status,
    contentType: type,
    cors: headerOf(answer, 'access-control-allow-origin'),
    body,
  };
}

describe('JSON gateway, etcd 3.4 and etcd-ts side by side', { timeout: 90_000 }, () => {
  let etcd: Member;
  let ours: Member;
  let url: Pair;

  before(async () => {
    [etcd, ours] = await Promise.all([
      Member.start({ kind: MemberKind.ETCD, name: 'gw-etcd' }),
      Member.start({ kind: MemberKind.ETCD_TS, name: 'gw-ours' }),
    ]);
    url = { etcd: etcd.clientUrl, ours: ours.clientUrl };
  });
  after(async () => {
    await Promise.all([etcd?.stop(), ours?.stop()]);
  });

  test('the same requests give the same answers', async () => {
    const mismatches: string[] = [];
    for (const c of CASES) {
      const [a, b] = await Promise.all([post(url.etcd, c.path, c.body), post(url.ours, c.path, c.body)]);
      const expected = comparable(a, c.drop, c.leasesAsSet);
      const actual = comparable(b, c.drop, c.leasesAsSet);
      try {
        assert.deepEqual(actual, expected);
      } catch {
        mismatches.push(
          `${c.name}: POST ${c.path} ${c.body}\n  etcd:    ${JSON.stringify(expected)}\n  etcd-ts: ${JSON.stringify(actual)}`,
        );
      }
    }
    assert.equal(mismatches.length, 0, `${mismatches.length} of ${CASES.length} differ:\n${mismatches.join('\n')}`);
  });

  test('the lease id above 2^53 came back exact', async () => {
    const answer = await post(url.ours, '/v3/lease/timetolive', `{"ID":"${BIG_LEASE_ID}"}`);
    assert.equal(answer.status, 200);
    assert.equal((JSON.parse(answer.body) as { ID: string }).ID, BIG_LEASE_ID);
  });

  test('watch streams the same lines: created, put with prev_kv, delete', async () => {
    const key = b64('watched');
    const run = async (base: string): Promise<unknown[]> => {
      const stream = new LineStream(`${base}/v3/watch`, `{"create_request":{"key":"${key}","prev_kv":true}}`);
      try {
        await stream.waitLines(1);
        await post(base, '/v3/kv/put', `{"key":"${key}","value":"${b64('1')}"}`);
        await post(base, '/v3/kv/put', `{"key":"${key}","value":"${b64('2')}"}`);
        await post(base, '/v3/kv/deleterange', `{"key":"${key}"}`);
        const lines = await stream.waitLines(4);
        return [stream.status, stream.headers['content-type'], ...lines.map((l) => normalize(l))];
      } finally {
        stream.close();
      }
    };
    const [a, b] = await Promise.all([run(url.etcd), run(url.ours)]);
    assert.deepEqual(b, a);
  });

  test('a watch from a compacted revision is created, then canceled with the compact revision', async () => {
    const body = `{"create_request":{"key":"${FOO}","start_revision":"2"}}`;
    const run = async (base: string): Promise<unknown[]> => {
      const stream = new LineStream(`${base}/v3/watch`, body);
      try {
        return (await stream.waitLines(2)).map((l) => normalize(l));
      } finally {
        stream.close();
      }
    };
    const [a, b] = await Promise.all([run(url.etcd), run(url.ours)]);
    assert.deepEqual(b, a);
  });

  test('keep-alive streams one answer per request, then ends', async () => {
    const grant = '{"TTL":60,"ID":"2000"}';
    const run = async (base: string): Promise<unknown[]> => {
      assert.equal((await post(base, '/v3/lease/grant', grant)).status, 200);
      const stream = new LineStream(`${base}/v3/lease/keepalive`, '{"ID":"2000"}\n{"ID":"2001"}');
      const lines = await stream.waitEnd();
      return [stream.status, ...lines.map((l) => normalize(l))];
    };
    const [a, b] = await Promise.all([run(url.etcd), run(url.ours)]);
    assert.deepEqual(b, a);
    assert.equal(b.length, 3);
  });

  test('a stream whose first request does not decode answers as etcd: UNKNOWN (500), the error body', async () => {
    const [a, b] = await Promise.all([
      post(url.etcd, '/v3/watch', '{"create_request":{"key":5}}'),
      post(url.ours, '/v3/watch', '{"create_request":{"key":5}}'),
    ]);
    assert.deepEqual(comparable(b), comparable(a));
  });

  test('observe streams the leader of an election (campaigned in the cases above)', async () => {
    const run = async (base: string): Promise<unknown[]> => {
      const stream = new LineStream(`${base}/v3/election/observe`, `{"name":"${b64('el')}"}`);
      try {
        const [first] = await stream.waitLines(1);
        return [stream.status, normalize(first ?? 'null')];
      } finally {
        stream.close();
      }
    };
    const [a, b] = await Promise.all([run(url.etcd), run(url.ours)]);
    assert.deepEqual(b, a);
  });

  test('snapshot streams the database in base64 chunks, its SHA-256 last', async () => {
    const run = async (base: string): Promise<void> => {
      const stream = new LineStream(`${base}/v3/maintenance/snapshot`, '{}');
      const lines = await stream.waitEnd();
      assert.equal(stream.status, 200);
      assert.ok(lines.length >= 2, `${lines.length} lines`);
      const blobs = lines.map((l) =>
        Buffer.from((JSON.parse(l) as { result: { blob: string } }).result.blob, 'base64'),
      );
      const all = Buffer.concat(blobs);
      const db = all.subarray(0, all.length - 32);
      assert.equal(createHash('sha256').update(db).digest('hex'), all.subarray(all.length - 32).toString('hex'));
      // A bbolt file: the magic number in the first meta page.
      assert.equal(db.readUInt32LE(16), 0xed0cdaed);
    };
    await Promise.all([run(url.etcd), run(url.ours)]);
  });

  test('member list: the same shape, this member in it', async () => {
    const [a, b] = await Promise.all([
      post(url.etcd, '/v3/cluster/member/list', '{}'),
      post(url.ours, '/v3/cluster/member/list', '{}'),
    ]);
    // Identities differ; the header's revision: see the note at the top.
    const drop = ['ID', 'peerURLs', 'clientURLs', 'name', 'revision'];
    assert.deepEqual(comparable(b, drop), comparable(a, drop));
    const members = (JSON.parse(b.body) as { members: { peerURLs: string[]; clientURLs: string[] }[] }).members;
    assert.deepEqual(members[0]?.peerURLs, [ours.peerUrl]);
    assert.deepEqual(members[0]?.clientURLs, [ours.clientUrl]);
  });

  test('status: the same fields; version and sizes are this server', async () => {
    const [a, b] = await Promise.all([
      post(url.etcd, '/v3/maintenance/status', '{}'),
      post(url.ours, '/v3/maintenance/status', '{}'),
    ]);
    assert.equal(b.status, 200);
    const keys = (text: string) => Object.keys(JSON.parse(text) as object).sort();
    assert.deepEqual(keys(b.body), keys(a.body));
    const st = JSON.parse(b.body) as Record<string, string>;
    assert.equal(st.version, '3.5.0');
    assert.equal(st.leader, (JSON.parse(b.body) as { header: { member_id: string } }).header.member_id);
    assert.ok(BigInt(st.dbSize ?? '0') > 0n);
  });

  test('alarm and defragment: etcd 3.5 fills the header 3.4 leaves out', async () => {
    for (const path of ['/v3/maintenance/alarm', '/v3/maintenance/defragment']) {
      const [a, b] = await Promise.all([post(url.etcd, path, '{}'), post(url.ours, path, '{}')]);
      assert.deepEqual(comparable(a), { status: 200, contentType: 'application/json', cors: '*', body: {} }, path);
      const body = JSON.parse(b.body) as { header?: { member_id?: string }; alarms?: unknown };
      assert.equal(b.status, 200, `${path}: ${b.body}`);
      assert.ok(body.header?.member_id, `${path}: ${b.body}`);
      assert.equal(body.alarms, undefined);
    }
  });

  test('auth: without an auth service every route answers UNIMPLEMENTED (501), or as etcd once there is one', async () => {
    const routes = [
      ['/v3/auth/authenticate', 'Authenticate'],
      ['/v3/auth/user/list', 'UserList'],
      ['/v3/auth/role/add', 'RoleAdd'],
      ['/v3/auth/enable', 'AuthEnable'],
    ] as const;
    for (const [path, method] of routes) {
      const [a, b] = await Promise.all([post(url.etcd, path, '{}'), post(url.ours, path, '{}')]);
      const ours = comparable(b);
      if (b.status === 501) {
        const message = `method etcdserverpb.Auth/${method} is not implemented yet`;
        assert.deepEqual(ours, {
          status: 501,
          contentType: 'application/json',
          cors: '*',
          body: { error: message, message, code: 12 },
        });
      } else {
        assert.deepEqual(ours, comparable(a), path);
      }
    }
  });

  test('routes: 404 for an unknown path, 405 for GET, OPTIONS answered for CORS', async () => {
    for (const [path, method] of [
      ['/v3/kv/nothing', 'POST'],
      ['/v3/kv/range/', 'POST'],
      ['/v3/kv/range', 'GET'],
      ['/v3/kv/range', 'PUT'],
      ['/v3/kv/range', 'OPTIONS'],
      ['/v3/maintenance/hashkv', 'GET'],
    ] as const) {
      const [a, b] = await Promise.all([
        send(`${url.etcd}${path}`, method === 'GET' || method === 'OPTIONS' ? null : '{}', { method }),
        send(`${url.ours}${path}`, method === 'GET' || method === 'OPTIONS' ? null : '{}', { method }),
      ]);
      // etcd 3.4 maps HashKV onto /hash by mistake; 3.5 serves /hashkv (405 for GET there).
      const expected =
        path === '/v3/maintenance/hashkv'
          ? { ...(comparable(a) as object), status: 405, body: 'Method Not Allowed\n' }
          : comparable(a);
      assert.deepEqual(comparable(b), expected, `${method} ${path}`);
    }
  });

  test('hash: the same shape (the values hash different files)', async () => {
    const [a, b] = await Promise.all([
      post(url.etcd, '/v3/maintenance/hash', '{}'),
      post(url.ours, '/v3/maintenance/hash', '{}'),
    ]);
    assert.deepEqual(comparable(b, ['hash']), comparable(a, ['hash']));
    assert.equal(typeof (JSON.parse(b.body) as { hash?: unknown }).hash, 'number');
  });

  test('etcd 3.5 paths and prefixes etcd 3.4 lacks: /v3/maintenance/hashkv, /v3alpha/', async () => {
    const hash = await post(url.ours, '/v3/maintenance/hashkv', '{}');
    assert.equal(hash.status, 200);
    const h = JSON.parse(hash.body) as { hash?: number; hash_revision?: string };
    assert.equal(typeof h.hash, 'number');
    assert.ok(Number(h.hash_revision) > 0);
    const alpha = await post(url.ours, '/v3alpha/kv/range', `{"key":"${FOO}"}`);
    const v3 = await post(url.ours, '/v3/kv/range', `{"key":"${FOO}"}`);
    assert.equal(alpha.status, 200);
    assert.deepEqual(normalize(alpha.body), normalize(v3.body));
  });
});
