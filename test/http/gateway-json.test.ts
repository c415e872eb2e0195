/**
 * The gateway's JSON, checked without a server: the request schemas against protoc's reading
 * of the .proto files; request decoding against protobuf-es's JSON writer (proto names and JSON
 * names), an independent implementation of the same mapping; responses as written against
 * protobuf-es's JSON with proto names (what jsonpb writes with OrigName); and the Go error
 * texts of the JSON reader and the base64 decoder.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type DescField, type DescMessage, toJson } from '@bufbuild/protobuf';
import { MESSAGE_DEPTH_MAX } from '../../src/api/gateway/decode.ts';
import { decodeBase64Std, decodeMessage, GATEWAY_ROUTES } from '../../src/api/gateway/index.ts';
import { JsonStreamReader, parseJsonDocument, quoteChar } from '../../src/api/gateway/json.ts';
import { type FieldSpec, type MessageSpec, ScalarType } from '../../src/api/gateway/schema.ts';
import type { TxnRequest } from '../../src/proto/index.ts';
import { loadRegistry, sampleMessage, tsToEs, variantCount } from '../proto/descriptors.ts';

const registry = loadRegistry();

function descOf(protoName: string): DescMessage {
  const desc = registry.getMessage(protoName);
  assert.ok(desc !== undefined, `no message ${protoName} in the .proto files`);
  return desc;
}

/** The schema type a .proto field should have. */
function expectedType(field: DescField): string {
  const kind = field.fieldKind === 'list' ? field.listKind : field.fieldKind;
  if (kind === 'message') return `message ${(field as { message: DescMessage }).message.typeName}`;
  if (kind === 'enum') return `enum ${(field as { enum: { typeName: string } }).enum.typeName}`;
  const scalar = (field as { scalar: number }).scalar;
  const names: Record<number, string> = {
    9: ScalarType.String,
    12: ScalarType.Bytes,
    8: ScalarType.Bool,
    3: ScalarType.Int64,
    4: ScalarType.Uint64,
    5: ScalarType.Int32,
    13: ScalarType.Uint32,
  };
  return names[scalar] ?? `scalar ${scalar}`;
}

function specType(f: FieldSpec): string {
  if (typeof f.type === 'function') return `message ${f.type().protoName}`;
  if (typeof f.type === 'object') return `enum ${f.type.protoName}`;
  return f.type;
}

/** Every message spec reachable from the routes' requests. */
function allSpecs(): MessageSpec[] {
  const seen = new Map<string, MessageSpec>();
  const visit = (spec: MessageSpec): void => {
    if (seen.has(spec.protoName)) return;
    seen.set(spec.protoName, spec);
    for (const f of spec.fields) if (typeof f.type === 'function') visit(f.type());
  };
  for (const r of GATEWAY_ROUTES) visit(r.request);
  return [...seen.values()];
}

describe('gateway request schemas', () => {
  test('every field of every request message, as protoc reads the .proto files', () => {
    const specs = allSpecs();
    assert.ok(specs.length >= 50, `${specs.length} request messages`);
    for (const spec of specs) {
      const desc = descOf(spec.protoName);
      const fromProto = desc.fields
        .map((f) => ({
          name: f.name,
          json: f.jsonName,
          number: f.number,
          type: expectedType(f),
          repeated: f.fieldKind === 'list',
          oneof: f.oneof?.localName,
        }))
        .sort((a, b) => a.number - b.number);
      const fromSpec = spec.fields
        .map((f) => ({
          name: f.name,
          json: f.json,
          number: f.number,
          type: specType(f),
          repeated: f.repeated,
          oneof: f.oneof,
        }))
        .sort((a, b) => a.number - b.number);
      assert.deepEqual(fromSpec, fromProto, spec.protoName);
      for (const f of spec.fields) {
        if (typeof f.type !== 'object') continue;
        const values = Object.fromEntries(registry.getEnum(f.type.protoName)!.values.map((v) => [v.name, v.number]));
        assert.deepEqual({ ...f.type.values }, values, f.type.protoName);
      }
    }
  });

  test('an empty body is the message ts-proto decodes from no bytes', () => {
    for (const route of GATEWAY_ROUTES) {
      assert.deepEqual(decodeMessage(route.request, null), route.method.decodeRequest(new Uint8Array(0)), route.path);
    }
  });

  test('requests written by protobuf-es (proto names, then JSON names) decode to the same message', () => {
    const done = new Set<string>();
    for (const route of GATEWAY_ROUTES) {
      if (done.has(route.request.protoName)) continue;
      done.add(route.request.protoName);
      const desc = descOf(route.request.protoName);
      for (let variant = 0; variant < variantCount(desc); variant++) {
        const sample = sampleMessage(desc, variant);
        const expected = route.method.decodeRequest(route.method.encodeRequest(sample as never));
        const es = tsToEs(desc, sample);
        for (const useProtoFieldName of [true, false]) {
          const json = JSON.stringify(toJson(desc, es, { useProtoFieldName }));
          const decoded = decodeMessage(route.request, new JsonStreamReader(Buffer.from(json)).next());
          assert.deepEqual(
            decoded,
            expected,
            `${route.request.protoName} (${useProtoFieldName ? 'proto' : 'JSON'} names)`,
          );
        }
      }
    }
  });

  test('messages nest up to MESSAGE_DEPTH_MAX (txns in txns), then fail cleanly', () => {
    const txn = GATEWAY_ROUTES.find((r) => r.path === 'kv/txn')!;
    const nested = (levels: number): string =>
      `${'{"success":[{"request_txn":'.repeat(levels)}{}${'}]}'.repeat(levels)}`;
    const decode = (levels: number) =>
      decodeMessage(txn.request, new JsonStreamReader(Buffer.from(nested(levels))).next());
    // Each level is a TxnRequest and a RequestOp.
    let depth = 0;
    for (let m = decode(MESSAGE_DEPTH_MAX / 2 - 1) as TxnRequest | undefined; m !== undefined; depth++) {
      const op = m.success[0]?.request;
      m = op?.$case === 'requestTxn' ? op.value : undefined;
    }
    assert.equal(depth, MESSAGE_DEPTH_MAX / 2);
    assert.throws(() => decode(MESSAGE_DEPTH_MAX / 2), /exceeded maximum recursion depth/);
  });

  test('responses are written as protobuf-es writes them with proto names', () => {
    for (const route of GATEWAY_ROUTES) {
      const typeName = route.method.path.split('/')[1]!.split('.')[0];
      const responseName = `${typeName}.${responseTypeOf(route.method.path)}`;
      const desc = descOf(responseName);
      for (let variant = 0; variant < variantCount(desc); variant++) {
        const sample = sampleMessage(desc, variant);
        const message = route.method.decodeResponse(route.method.encodeResponse(sample as never));
        const ours = JSON.parse(JSON.stringify(route.toJSON(message as never)));
        const theirs = toJson(desc, tsToEs(desc, sample), { useProtoFieldName: true });
        assert.deepEqual(ours, theirs, `${responseName} variant ${variant}`);
      }
    }
  });
});

/** The response message of a method path, from the descriptors. */
function responseTypeOf(path: string): string {
  const [service, method] = path.slice(1).split('/') as [string, string];
  const svc = registry.getService(service);
  assert.ok(svc !== undefined, service);
  const m = svc.methods.find((x) => x.name === method);
  assert.ok(m !== undefined, path);
  return m.output.typeName.slice(m.output.typeName.indexOf('.') + 1);
}

/** The error a body gives, or 'ok'. */
function readError(body: string): string {
  try {
    new JsonStreamReader(Buffer.from(body, 'latin1')).next();
    return 'ok';
  } catch (err) {
    return (err as Error).message;
  }
}

describe("the JSON reader answers with Go's encoding/json texts", () => {
  test('syntax errors', () => {
    const cases: [string, string][] = [
      ['{"a":1}', 'ok'],
      ['{"a":1} trailing garbage', 'ok'],
      ['  ', 'ok'],
      ['x', "invalid character 'x' looking for beginning of value"],
      ['{"a" 1}', "invalid character '1' after object key"],
      ['{"a":1 "b":2}', `invalid character '"' after object key:value pair`],
      ['{,}', "invalid character ',' looking for beginning of object key string"],
      ['{"a":1,}', "invalid character '}' looking for beginning of object key string"],
      ['[1 2]', "invalid character '2' after array element"],
      ['{"a":}', "invalid character '}' looking for beginning of value"],
      ['{"a":tru}', "invalid character '}' in literal true (expecting 'e')"],
      ['{"a":nul1}', "invalid character '1' in literal null (expecting 'l')"],
      ['{"a":-x}', "invalid character 'x' in numeric literal"],
      ['{"a":1.}', "invalid character '}' after decimal point in numeric literal"],
      ['{"a":1e}', "invalid character '}' in exponent of numeric literal"],
      ['{"a":01}', "invalid character '1' after object key:value pair"],
      ['{"a":"\\q"}', "invalid character 'q' in string escape code"],
      ['{"a":"\\u12x4"}', "invalid character 'x' in \\u hexadecimal character escape"],
      ['{"a":"\t"}', "invalid character '\\t' in string literal"],
      ['{"a":"x', 'unexpected EOF'],
      ['{"a":1', 'unexpected EOF'],
      ['{"a":\'x\'}', "invalid character '\\'' looking for beginning of value"],
      ['{"a":\\}', "invalid character '\\\\' looking for beginning of value"],
      ['\u00c3', "invalid character 'Ã' looking for beginning of value"],
      ['\u0001', "invalid character '\\x01' looking for beginning of value"],
    ];
    for (const [body, expected] of cases) assert.equal(readError(body), expected, JSON.stringify(body));
  });

  test('nesting is bounded as in Go', () => {
    assert.equal(readError(`${'['.repeat(10_000)}${']'.repeat(10_000)}`), 'ok');
    assert.equal(readError('['.repeat(10_001)), 'exceeded max depth');
  });

  test('json.Unmarshal of a whole document (quoted integers) checks what follows the value', () => {
    const doc = (s: string) => {
      try {
        return parseJsonDocument(Buffer.from(s));
      } catch (err) {
        return (err as Error).message;
      }
    };
    assert.deepEqual(doc('12'), { kind: 'number', text: '12' });
    assert.equal(doc(''), 'unexpected end of JSON input');
    assert.equal(doc('1 2'), "invalid character '2' after top-level value");
    assert.equal(doc('{'), 'unexpected end of JSON input');
  });

  test('strings decode escapes and surrogate pairs; lone surrogates become U+FFFD', () => {
    const str = (s: string) => {
      const v = new JsonStreamReader(Buffer.from(s)).next();
      assert.equal(v?.kind, 'string');
      return (v as { value: string }).value;
    };
    assert.equal(str('"a\\nb\\t\\"\\\\\\/"'), 'a\nb\t"\\/');
    assert.equal(str('"\\ud83d\\ude00"'), '😀');
    assert.equal(str('"\\ud83dx"'), '\ufffdx');
    assert.equal(str('"\\ude00"'), '\ufffd');
    assert.equal(str('"é"'), 'é');
    assert.equal(quoteChar(0x80), "'\\u0080'");
  });

  test('numbers keep their text: a 19-digit id does not round', () => {
    const v = new JsonStreamReader(Buffer.from('{"ID":7587869213578283011}')).next();
    assert.equal(v?.kind, 'object');
    assert.deepEqual((v as { entries: Map<string, unknown> }).entries.get('ID'), {
      kind: 'number',
      text: '7587869213578283011',
    });
  });

  test('a stream of values is read one at a time', () => {
    const r = new JsonStreamReader(Buffer.from('{"a":1}\n{"b":2} 3'));
    assert.equal(r.next()?.kind, 'object');
    assert.equal(r.next()?.kind, 'object');
    assert.deepEqual(r.next(), { kind: 'number', text: '3' });
    assert.equal(r.next(), null);
  });
});

describe("base64 as Go's StdEncoding decodes it", () => {
  const decode = (s: string): string => {
    try {
      return `ok:${Buffer.from(decodeBase64Std(Buffer.from(s, 'latin1'))).toString('latin1')}`;
    } catch (err) {
      return (err as Error).message;
    }
  };
  test('valid input, with newlines skipped', () => {
    assert.equal(decode(''), 'ok:');
    assert.equal(decode('Zg=='), 'ok:f');
    assert.equal(decode('Zm8='), 'ok:fo');
    assert.equal(decode('Zm9v'), 'ok:foo');
    assert.equal(decode('Zm9v\r\nYmFy'), 'ok:foobar');
    assert.equal(decode('Zg=\n='), 'ok:f');
    assert.equal(decode('AP+A'), 'ok:\x00\xff\x80');
  });
  test('bad input fails at the offset Go reports', () => {
    assert.equal(decode('Z'), 'illegal base64 data at input byte 0');
    assert.equal(decode('Zm9'), 'illegal base64 data at input byte 0');
    assert.equal(decode('Zm9vZg'), 'illegal base64 data at input byte 4');
    assert.equal(decode('!!'), 'illegal base64 data at input byte 0');
    assert.equal(decode('Zm!v'), 'illegal base64 data at input byte 2');
    assert.equal(decode('='), 'illegal base64 data at input byte 0');
    assert.equal(decode('Zg='), 'illegal base64 data at input byte 3');
    assert.equal(decode('Zg=x'), 'illegal base64 data at input byte 2');
    assert.equal(decode('Zg==x'), 'illegal base64 data at input byte 4');
    assert.equal(decode('Zm8=Zg=='), 'illegal base64 data at input byte 4');
    assert.equal(decode('-_8='), 'illegal base64 data at input byte 0');
  });
});
