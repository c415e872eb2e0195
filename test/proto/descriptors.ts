// Test support: the .proto files as descriptors (parsed by protoc), sample messages built
// from them, and conversions between ts-proto's shapes and protobuf-es's reflective messages.
// protobuf-es reads the descriptors directly, so it is an independent encoder/decoder to
// check the generated codecs against.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  create,
  createFileRegistry,
  type DescField,
  type DescMessage,
  type FileRegistry,
  fromBinary,
  type Message,
  ScalarType,
} from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';

export const protoRoot = fileURLToPath(new URL('../../src/proto/', import.meta.url));

export function protoFiles(dir: string = protoRoot): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (name === 'gen') continue;
    if (statSync(path).isDirectory()) out.push(...protoFiles(path));
    else if (name.endsWith('.proto')) out.push(relative(protoRoot, path).split(sep).join('/'));
  }
  return out;
}

/** Parses every .proto file with protoc and returns the registry of their descriptors. */
export function loadRegistry(): FileRegistry {
  const dir = mkdtempSync(join(tmpdir(), 'etcd-ts-descriptors-'));
  try {
    const out = join(dir, 'set.pb');
    const result = spawnSync(
      'protoc',
      ['--include_imports', `--descriptor_set_out=${out}`, `--proto_path=${protoRoot}`, ...protoFiles()],
      { timeout: 10_000 },
    );
    if (result.status !== 0) throw new Error(`protoc failed: ${result.stderr?.toString() ?? result.error}`);
    return createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(out)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function allMessages(registry: FileRegistry): DescMessage[] {
  const out: DescMessage[] = [];
  for (const file of registry.files) {
    const walk = (messages: readonly DescMessage[]) => {
      for (const m of messages) {
        out.push(m);
        walk(m.nestedMessages);
      }
    };
    walk(file.messages);
  }
  return out;
}

/** The export name ts-proto gives a message: nested names joined by '_'. */
export function tsName(desc: DescMessage): string {
  const pkg = desc.file.proto.package;
  return desc.typeName.slice(pkg.length + 1).replaceAll('.', '_');
}

// A plain ts-proto message value.
type TsValue = Record<string, unknown>;

const U64_MAX = 2n ** 64n - 1n;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

function scalarSample(type: ScalarType, variant: number): unknown {
  const odd = variant % 2 === 1;
  switch (type) {
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return odd ? I64_MAX : I64_MIN + 7n;
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return odd ? 2n ** 63n : U64_MAX;
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return odd ? 2 ** 31 - 1 : -(2 ** 31);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return odd ? 1 : 2 ** 32 - 1;
    case ScalarType.BOOL:
      return true;
    case ScalarType.STRING:
      return odd ? 'etcd-ts' : 'clé/ключ/鍵';
    case ScalarType.BYTES:
      return odd ? new Uint8Array([0x66, 0x6f, 0x6f]) : new Uint8Array([0x00, 0xff, 0x80, 0x7f]);
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return 1.5;
  }
}

function fieldSample(field: DescField, variant: number, depth: number): unknown {
  switch (field.fieldKind) {
    case 'scalar':
      return scalarSample(field.scalar, variant);
    case 'enum': {
      const nonZero = field.enum.values.filter((v) => v.number !== 0);
      return nonZero[variant % nonZero.length]!.number;
    }
    case 'message':
      return depth > 0 ? sampleMessage(field.message, variant + 1, depth - 1) : undefined;
    case 'list': {
      const one = (i: number): unknown => {
        switch (field.listKind) {
          case 'scalar':
            return scalarSample(field.scalar, variant + i);
          case 'enum':
            return field.enum.values[(variant + i) % field.enum.values.length]!.number;
          case 'message':
            return sampleMessage(field.message, variant + i + 1, depth - 1);
        }
      };
      if (field.listKind === 'message' && depth <= 0) return [];
      return [one(0), one(1)];
    }
    case 'map':
      throw new Error(`map fields are not used by etcd (${field.toString()})`);
  }
}

/** Number of variants needed so that every case of every oneof of desc is chosen once. */
export function variantCount(desc: DescMessage): number {
  return Math.max(1, ...desc.oneofs.map((o) => o.fields.length));
}

/**
 * A ts-proto value of desc with every field set to a non-default value (64-bit extremes,
 * non-ASCII strings, bytes with 0x00 and 0xff). `variant` selects the oneof cases and
 * alternates the scalar values; nested messages stop at `depth`.
 */
export function sampleMessage(desc: DescMessage, variant: number, depth = 3): TsValue {
  const out: TsValue = {};
  for (const field of desc.fields) {
    if (field.oneof !== undefined) continue;
    out[field.localName] = fieldSample(field, variant, depth);
  }
  for (const oneof of desc.oneofs) {
    const field = oneof.fields[variant % oneof.fields.length]!;
    const value = fieldSample(field, variant, depth);
    out[oneof.localName] = value === undefined ? undefined : { $case: field.localName, value };
  }
  return out;
}

/** Converts a protobuf-es message to the ts-proto shape (oneof `{case}` to `{$case}`). */
export function esToTs(desc: DescMessage, message: Message): TsValue {
  const src = message as unknown as Record<string, unknown>;
  const out: TsValue = {};
  const convert = (field: DescField, value: unknown): unknown => {
    if (field.fieldKind === 'message') return value === undefined ? undefined : esToTs(field.message, value as Message);
    if (field.fieldKind === 'list' && field.listKind === 'message') {
      return (value as Message[]).map((m) => esToTs(field.message, m));
    }
    return value;
  };
  for (const field of desc.fields) {
    if (field.oneof === undefined) out[field.localName] = convert(field, src[field.localName]);
  }
  for (const oneof of desc.oneofs) {
    const selected = src[oneof.localName] as { case: string | undefined; value?: unknown };
    const field = oneof.fields.find((f) => f.localName === selected.case);
    out[oneof.localName] =
      field === undefined ? undefined : { $case: field.localName, value: convert(field, selected.value) };
  }
  return out;
}

/** Builds a protobuf-es message from a ts-proto value. */
export function tsToEs(desc: DescMessage, value: TsValue): Message {
  const init: Record<string, unknown> = {};
  const convert = (field: DescField, v: unknown): unknown => {
    if (field.fieldKind === 'message') return v === undefined ? undefined : tsToEs(field.message, v as TsValue);
    if (field.fieldKind === 'list' && field.listKind === 'message') {
      return (v as TsValue[]).map((m) => tsToEs(field.message, m));
    }
    return v;
  };
  for (const field of desc.fields) {
    if (field.oneof === undefined) init[field.localName] = convert(field, value[field.localName]);
  }
  for (const oneof of desc.oneofs) {
    const selected = value[oneof.localName] as { $case: string; value: unknown } | undefined;
    if (selected === undefined) continue;
    const field = oneof.fields.find((f) => f.localName === selected.$case)!;
    init[oneof.localName] = { case: selected.$case, value: convert(field, selected.value) };
  }
  return create(desc, init as never) as Message;
}
