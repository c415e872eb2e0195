import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createSilentLogger, createStreamLogger } from '../../src/server/logger.ts';

function capture(): { stream: Writable & { write(chunk: string): boolean }; lines: () => Record<string, unknown>[] } {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return {
    stream: stream as Writable & { write(chunk: string): boolean },
    lines: () =>
      text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

test("JSON lines shaped like etcd's zap output, member name bound once, level honoured", () => {
  const out = capture();
  const logger = createStreamLogger('infra1', 'info', out.stream);
  logger.debug('not shown');
  logger.info({ address: '127.0.0.1:2379' }, 'serving client traffic insecurely; this is strongly discouraged!');
  logger.warn('careful');
  const lines = out.lines();
  assert.equal(lines.length, 2);
  const [first, second] = lines;
  assert.deepEqual(Object.keys(first!), ['level', 'ts', 'name', 'address', 'msg']);
  assert.equal(first!.level, 'info');
  assert.match(String(first!.ts), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(first!.name, 'infra1');
  assert.equal(first!.msg, 'serving client traffic insecurely; this is strongly discouraged!');
  assert.equal(second!.level, 'warn');

  const quiet = capture();
  const errorsOnly = createStreamLogger('m', 'error', quiet.stream);
  errorsOnly.warn('no');
  errorsOnly.error('yes');
  assert.deepEqual(
    quiet.lines().map((l) => l.msg),
    ['yes'],
  );
  const panicLevel = capture();
  createStreamLogger('m', 'panic', panicLevel.stream).error('dropped');
  assert.equal(panicLevel.lines().length, 0);
  assert.equal(createSilentLogger().isLevelEnabled('fatal'), false);
});
