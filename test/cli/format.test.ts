/**
 * Unit tests of the pieces etcdctl-ts's output and parsing are made of: Go's duration, quoting
 * and JSON string formats, go-humanize's sizes, pflag's parsing, text/tabwriter, tablewriter,
 * and etcdctl's txn and watch argument parsing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cobraDefaultUsage, flag } from '../../src/cli/command.ts';
import { argify, goUnquote, parseCompare } from '../../src/cli/commands/txn.ts';
import { parseWatchArgs } from '../../src/cli/commands/watch.ts';
import { FlagError, FlagSet, FlagType, parseGoInt } from '../../src/cli/flags.ts';
import {
  formatDuration,
  goJsonString,
  goQuote,
  hex16,
  hex016,
  humanizeBytes,
  parseDuration,
} from '../../src/cli/go-format.ts';
import { renderTable } from '../../src/cli/printers/table.ts';
import { tabwrite } from '../../src/cli/tabwriter.ts';

test('Go durations parse and print as time.Duration does', () => {
  const cases: Array<[string, bigint, string]> = [
    ['5s', 5_000_000_000n, '5s'],
    ['1.5s', 1_500_000_000n, '1.5s'],
    ['500ms', 500_000_000n, '500ms'],
    ['1m30s', 90_000_000_000n, '1m30s'],
    ['2h', 7_200_000_000_000n, '2h0m0s'],
    ['10us', 10_000n, '10µs'],
    ['1.183836ms', 1_183_836n, '1.183836ms'],
    ['0', 0n, '0s'],
    ['-3s', -3_000_000_000n, '-3s'],
  ];
  for (const [text, ns, printed] of cases) {
    assert.equal(parseDuration(text), ns, text);
    assert.equal(formatDuration(ns), printed, text);
  }
  assert.throws(() => parseDuration('xx'), /^Error: time: invalid duration "xx"$/);
  assert.throws(() => parseDuration('5'), /missing unit in duration "5"/);
  assert.throws(() => parseDuration('5y'), /unknown unit "y" in duration "5y"/);
});

test('quoting as %q and strings as encoding/json', () => {
  assert.equal(goQuote(Buffer.from([0x61, 0x00, 0xff, 0x22, 0x5c, 0x0a, 0xc3, 0xa9])), '"a\\x00\\xff\\"\\\\\\né"');
  assert.equal(goQuote('\u0007\t\u2028'), '"\\a\\t\\u2028"');
  assert.equal(goJsonString('<a&b>"é\u0001'), '"\\u003ca\\u0026b\\u003e\\"é\\u0001"');
  assert.equal(goJsonString(Buffer.from([0xff, 0x41])), '"\\ufffdA"');
  assert.equal(hex016(0x1234n), '0000000000001234');
  assert.equal(hex16(0xabcn), '             abc');
});

test('sizes as go-humanize prints them, ties to even', () => {
  const cases: Array<[number, string]> = [
    [0, '0 B'],
    [9, '9 B'],
    [999, '999 B'],
    [1000, '1.0 kB'],
    [20_480, '20 kB'],
    [12_500_000, '12 MB'],
    [13_500_000, '14 MB'],
    [1_500_000, '1.5 MB'],
  ];
  for (const [n, text] of cases) assert.equal(humanizeBytes(n), text, String(n));
});

test('flags parse as pflag does', () => {
  const specs = [
    flag('write-out', FlagType.STRING, 'simple', 'format', 'w'),
    flag('prefix', FlagType.BOOL, 'false', 'prefix'),
    flag('limit', FlagType.INT64, '0', 'limit'),
    flag('endpoints', FlagType.STRING_SLICE, '[127.0.0.1:2379]', 'endpoints'),
    flag('timeout', FlagType.DURATION, '5s', 'timeout'),
    flag('interactive', FlagType.BOOL, 'false', 'i', 'i'),
  ];
  const flags = new FlagSet(specs);
  const { positional, dashAt } = flags.parse([
    'a',
    '-wjson',
    '--prefix',
    '--limit',
    '0x10',
    '--endpoints=x:1,y:2',
    '--endpoints',
    'z:3',
    '-i',
    '--',
    '-b',
  ]);
  assert.deepEqual(positional, ['a', '-b']);
  assert.equal(dashAt, 1);
  assert.equal(flags.string('write-out'), 'json');
  assert.equal(flags.bool('prefix'), true);
  assert.equal(flags.int('limit'), 16n);
  assert.deepEqual(flags.strings('endpoints'), ['x:1', 'y:2', 'z:3']);
  assert.equal(flags.duration('timeout'), 5_000_000_000n);
  assert.equal(flags.changed('timeout'), false);
  const again = new FlagSet(specs);
  again.parse(['-w=fields', '--prefix=false']);
  assert.equal(again.string('write-out'), 'fields');
  assert.equal(again.bool('prefix'), false);
  assert.throws(() => new FlagSet(specs).parse(['--bogus']), new FlagError('unknown flag: --bogus'));
  assert.throws(() => new FlagSet(specs).parse(['-x']), /unknown shorthand flag: 'x' in -x/);
  assert.throws(() => new FlagSet(specs).parse(['--limit']), /flag needs an argument: --limit/);
  assert.throws(
    () => new FlagSet(specs).parse(['--limit=abc']),
    /invalid argument "abc" for "--limit" flag: strconv.ParseInt: parsing "abc": invalid syntax/,
  );
  assert.throws(() => new FlagSet(specs).parse(['--prefix=maybe']), /strconv.ParseBool/);
  assert.equal(parseGoInt('-0b101'), -5n);
  assert.equal(parseGoInt('017'), 15n);
  assert.throws(() => parseGoInt('9223372036854775808'), /value out of range/);
});

test('tabwriter pads cells to columns of tab stops; cobra usage aligns flags', () => {
  assert.equal(tabwrite('a\tb\nlonger-cell\tc\n'), 'a\t\tb\nlonger-cell\tc\n');
  assert.equal(tabwrite('x\ny\tz\n'), 'x\ny\tz\n');
  const usage = cobraDefaultUsage('get <key>', [
    flag('limit', FlagType.INT64, '0', 'Maximum'),
    flag('consistency', FlagType.STRING, 'l', 'Consistency'),
    flag('help', FlagType.BOOL, 'false', 'help for get', 'h'),
  ]);
  assert.equal(
    usage,
    'Usage:\n   get <key> [flags]\n\nFlags:\n' +
      '      --consistency string   Consistency (default "l")\n' +
      '  -h, --help                 help for get\n' +
      '      --limit int            Maximum\n\n',
  );
});

test('tables: centred headers, right-aligned cells, long cells wrapped at spaces', () => {
  const table = renderTable(
    ['endpoint', 'error'],
    [['127.0.0.1:2379', 'a rather long error message that does not fit one cell']],
  );
  assert.equal(
    table,
    '+----------------+--------------------------------+\n' +
      '|    ENDPOINT    |             ERROR              |\n' +
      '+----------------+--------------------------------+\n' +
      '| 127.0.0.1:2379 |    a rather long error message |\n' +
      '|                |     that does not fit one cell |\n' +
      '+----------------+--------------------------------+\n',
  );
  assert.equal(renderTable(['a'], []), '+---+\n| A |\n+---+\n+---+\n');
});

test("txn lines: etcdctl's comparisons and argument splitting", () => {
  const c = parseCompare('mod("k\\x41") > "5"');
  assert.equal(Buffer.from(c.key).toString(), 'kA');
  assert.deepEqual(c.targetUnion, { $case: 'modRevision', value: 5n });
  assert.throws(
    () => parseCompare('value("a" = "b"'),
    /malformed comparison: value\("a" = "b"; got value\("a"\) {2}""/,
  );
  assert.throws(() => parseCompare('ver("a") = "x"'), /invalid txn compare request/);
  assert.deepEqual(argify(`put "a b" 'c d' e\\"f`), ['put', 'a b', 'c d', 'e\\"f']);
  assert.equal(goUnquote('"\\u00e9\\101\\n"'), Buffer.from('é\u0041\n').toString('latin1'));
  assert.equal(goUnquote('"bad\\q"'), undefined);
});

test("watch arguments: etcdctl's handling of --, ETCDCTL_WATCH_KEY and conflicts", () => {
  assert.deepEqual(parseWatchArgs(['watch', 'foo', '--', 'echo', 'hi'], ['foo', 'echo', 'hi'], '', ''), {
    watchArgs: ['foo'],
    execArgs: ['echo', 'hi'],
  });
  assert.deepEqual(parseWatchArgs(['watch', '--prefix'], [], 'k/', 'k0'), { watchArgs: ['k/', 'k0'], execArgs: [] });
  assert.throws(() => parseWatchArgs(['watch', 'a', '--'], ['a'], '', ''), /found separator --, but no commands/);
  assert.throws(() => parseWatchArgs(['watch', 'a'], ['a'], 'k', ''), /found conflicting environment key/);
  assert.throws(() => parseWatchArgs(['watch'], [], '', ''), /^Error: bad number of arguments$/);
});
