/**
 * `/health`, `/livez` and `/readyz` as etcd 3.5 answers them, on etcd-ts members in this
 * process: a healthy one, one with alarms raised through the JSON gateway, and one that has no
 * leader (its only peer never starts). The status codes are checked against the real etcd for
 * the same alarms; etcd 3.4 writes `{"health":"true"}` without the `reason` 3.5 added, so the
 * bodies are checked against etcd 3.5's format.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EtcdService } from '../../src/api/etcd-service.ts';
import { type Member as EmbeddedMember, startMember } from '../../src/embed/index.ts';
import { createSilentLogger } from '../../src/server/logger.ts';
import { Member, MemberKind } from '../helpers/member.ts';
import { freePort } from '../helpers/ports.ts';
import { type HttpAnswer, post, send } from './http-client.ts';
import { parsePrometheusText, sampleValue } from './prom-text.ts';

const TEXT = 'text/plain; charset=utf-8';
const WAIT_MS = 20_000;

const dirs: string[] = [];

async function member(name: string, peers: number): Promise<EmbeddedMember> {
  const ports = await Promise.all(Array.from({ length: peers + 1 }, () => freePort()));
  const client = `http://127.0.0.1:${ports[0]}`;
  const peerUrls = ports.slice(1).map((p) => `http://127.0.0.1:${p}`);
  const dataDir = mkdtempSync(join(tmpdir(), `etcd-ts-health-${name}-`));
  dirs.push(dataDir);
  return startMember(
    {
      name,
      dataDir,
      listenClientUrls: [client],
      advertiseClientUrls: [client],
      listenPeerUrls: [peerUrls[0]!],
      initialAdvertisePeerUrls: [peerUrls[0]!],
      initialCluster: peerUrls.map((u, i) => `${i === 0 ? name : `${name}-absent${i}`}=${u}`).join(','),
    },
    { logger: createSilentLogger(name), services: [new EtcdService()] },
  );
}

function get(base: string, path: string, method = 'GET'): Promise<HttpAnswer> {
  return send(`${base}${path}`, null, { method });
}

function expectAnswer(answer: HttpAnswer, status: number, body: string, what: string): void {
  assert.equal(answer.status, status, `${what}: ${answer.body}`);
  assert.equal(answer.body, body, what);
  assert.equal(answer.headers['content-type'], TEXT, what);
}

async function waitHealthy(base: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while ((await get(base, '/health')).status !== 200) {
    if (Date.now() > deadline) throw new Error(`${base} not healthy within ${WAIT_MS} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function alarm(base: string, action: 'ACTIVATE' | 'DEACTIVATE', type: 'NOSPACE' | 'CORRUPT'): Promise<void> {
  const status = JSON.parse((await post(base, '/v3/maintenance/status', '{}')).body) as {
    header: { member_id: string };
  };
  const answer = await post(
    base,
    '/v3/maintenance/alarm',
    JSON.stringify({ action, memberID: status.header.member_id, alarm: type }),
  );
  assert.equal(answer.status, 200, answer.body);
}

after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('health endpoints of a healthy member, and with alarms', { timeout: 60_000 }, () => {
  let ours: EmbeddedMember;
  let etcd: Member;
  let url: string;

  before(async () => {
    [ours, etcd] = await Promise.all([
      member('healthy', 1),
      Member.start({ kind: MemberKind.ETCD, name: 'health-etcd' }),
    ]);
    url = ours.clientUrls[0]!;
    await waitHealthy(url);
  });
  after(async () => {
    await Promise.all([ours?.close(), etcd?.stop()]);
  });

  test('healthy: /health, /livez, /readyz and their checks', async () => {
    expectAnswer(await get(url, '/health'), 200, '{"health":"true","reason":""}', '/health');
    expectAnswer(await get(url, '/health?serializable=true'), 200, '{"health":"true","reason":""}', 'serializable');
    expectAnswer(await get(url, '/livez'), 200, 'ok\n', '/livez');
    expectAnswer(await get(url, '/readyz'), 200, 'ok\n', '/readyz');
    expectAnswer(
      await get(url, '/readyz?verbose'),
      200,
      '[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\nok\n',
      '/readyz?verbose',
    );
    expectAnswer(
      await get(url, '/readyz?verbose&exclude=linearizable_read&exclude=non_learner'),
      200,
      '[+]data_corruption ok\n[+]serializable_read ok\nok\n',
      'excluded checks',
    );
    expectAnswer(await get(url, '/livez?verbose'), 200, '[+]serializable_read ok\nok\n', '/livez?verbose');
    expectAnswer(
      await get(url, '/readyz/linearizable_read?verbose'),
      200,
      '[+]linearizable_read ok\nok\n',
      'one check',
    );
    expectAnswer(await get(url, '/livez/serializable_read'), 200, 'ok\n', 'one livez check');
    const wrong = await get(url, '/health', 'POST');
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.allow, 'GET');
    assert.equal((await get(url, '/readyz/nope')).status, 404);
  });

  test("/health and /version answer as etcd does (status, type); /health carries 3.5's reason", async () => {
    for (const path of ['/health', '/version']) {
      const [a, b] = await Promise.all([get(etcd.clientUrl, path), get(url, path)]);
      assert.equal(b.status, a.status, path);
      assert.equal(b.headers['content-type'], a.headers['content-type'], path);
      assert.deepEqual(
        Object.keys(JSON.parse(b.body) as object).filter((k) => k !== 'reason'),
        Object.keys(JSON.parse(a.body) as object),
        path,
      );
    }
  });

  test('NOSPACE fails /health unless excluded, not /readyz; CORRUPT fails data_corruption; counted', async () => {
    await Promise.all([alarm(url, 'ACTIVATE', 'NOSPACE'), alarm(etcd.clientUrl, 'ACTIVATE', 'NOSPACE')]);
    const [a, b] = await Promise.all([get(etcd.clientUrl, '/health'), get(url, '/health')]);
    assert.equal(a.status, 503);
    expectAnswer(b, 503, '{"health":"false","reason":"ALARM NOSPACE"}\n', 'NOSPACE');
    const [ax, bx] = await Promise.all([
      get(etcd.clientUrl, '/health?exclude=NOSPACE'),
      get(url, '/health?exclude=NOSPACE'),
    ]);
    assert.equal(ax.status, 200);
    expectAnswer(bx, 200, '{"health":"true","reason":""}', 'NOSPACE excluded');
    expectAnswer(await get(url, '/readyz'), 200, 'ok\n', '/readyz with NOSPACE');

    await alarm(url, 'ACTIVATE', 'CORRUPT');
    expectAnswer(
      await get(url, '/readyz'),
      503,
      '[-]data_corruption failed: alarm activated: CORRUPT\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\n\n',
      '/readyz with CORRUPT',
    );
    expectAnswer(await get(url, '/readyz?exclude=data_corruption'), 200, 'ok\n', 'CORRUPT excluded');
    expectAnswer(await get(url, '/livez'), 200, 'ok\n', '/livez with CORRUPT');
    expectAnswer(
      await get(url, '/health?exclude=NOSPACE'),
      503,
      '{"health":"false","reason":"ALARM CORRUPT"}\n',
      'CORRUPT is not excluded by NOSPACE',
    );
    await Promise.all([
      alarm(url, 'DEACTIVATE', 'NOSPACE'),
      alarm(url, 'DEACTIVATE', 'CORRUPT'),
      alarm(etcd.clientUrl, 'DEACTIVATE', 'NOSPACE'),
    ]);
    expectAnswer(await get(url, '/health'), 200, '{"health":"true","reason":""}', 'alarms cleared');

    const metrics = parsePrometheusText((await get(url, '/metrics')).body);
    assert.ok((sampleValue(metrics, 'etcd_server_health_failures') ?? 0) >= 2);
    assert.ok((sampleValue(metrics, 'etcd_server_health_success') ?? 0) >= 3);
    // The gauge holds each check's last outcome: data_corruption last ran with CORRUPT raised.
    assert.equal(sampleValue(metrics, 'etcd_server_healthcheck', { type: 'readyz', name: 'data_corruption' }), 0);
    assert.equal(sampleValue(metrics, 'etcd_server_healthcheck', { type: 'readyz', name: 'linearizable_read' }), 1);
    assert.ok(
      (sampleValue(metrics, 'etcd_server_healthchecks_total', {
        type: 'readyz',
        name: 'data_corruption',
        status: 'error',
      }) ?? 0) >= 1,
    );
  });
});

describe('health endpoints of a member without a leader', { timeout: 60_000 }, () => {
  let lonely: EmbeddedMember;
  let url: string;

  before(async () => {
    lonely = await member('lonely', 2);
    url = lonely.clientUrls[0]!;
  });
  after(async () => {
    await lonely?.close();
  });

  test('/health fails with RAFT NO LEADER, but not when serializable; /livez passes; /readyz names the read that fails', async () => {
    expectAnswer(await get(url, '/health'), 503, '{"health":"false","reason":"RAFT NO LEADER"}\n', '/health');
    expectAnswer(await get(url, '/health?serializable=true'), 200, '{"health":"true","reason":""}', 'serializable');
    expectAnswer(await get(url, '/livez'), 200, 'ok\n', '/livez');
    expectAnswer(
      await get(url, '/readyz'),
      503,
      '[+]data_corruption ok\n[+]serializable_read ok\n[-]linearizable_read failed: etcdserver: no leader\n[+]non_learner ok\n\n',
      '/readyz',
    );
    expectAnswer(
      await get(url, '/readyz/linearizable_read'),
      503,
      '[-]linearizable_read failed: etcdserver: no leader\n\n',
      '/readyz/linearizable_read',
    );
    expectAnswer(await get(url, '/readyz/serializable_read'), 200, 'ok\n', '/readyz/serializable_read');
  });
});
