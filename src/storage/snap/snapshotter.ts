// Snapshot files: `<term hex 16>-<index hex 16>.snap`, each the snapshot's data framed by a
// header and a trailing CRC-32C, written to a temporary name, fsynced, renamed into place, and
// the directory fsynced. See README.md for the layout.

import assert from 'node:assert/strict';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { crc32c } from '../crc32c.ts';
import type { WalSnapshotMarker } from '../wal/types.ts';
import {
  SnapCorruptError,
  SnapCrcMismatchError,
  type SnapError,
  SnapInvalidArgumentError,
  SnapNotFoundError,
} from './errors.ts';

/** "etcd-ts snapshot", version 1. */
const MAGIC = Buffer.from('ETSSNAP1', 'latin1');
/** magic (8) + term (8) + index (8) + data length (8). */
const HEADER_BYTES = 32;
const TRAILER_BYTES = 4;
const SNAP_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;
const DB_NAME = /^([0-9a-f]{16})\.snap\.db$/;
const SNAP_SUFFIX = '.snap';
const BROKEN_SUFFIX = '.broken';
const TEMP_SUFFIX = '.tmp';
const TWO_POW_32 = 0x1_0000_0000;
/** Largest data a snapshot file holds: what one Buffer can. */
export const SNAPSHOT_DATA_BYTES_MAX = 2 ** 31 - 1 - HEADER_BYTES - TRAILER_BYTES;

export interface Snapshot {
  index: number;
  term: number;
  data: Uint8Array;
}

export interface SnapshotFile {
  readonly name: string;
  readonly index: number;
  readonly term: number;
}

/** A snapshot file that failed to read back, and the name it was moved to. */
export interface BrokenSnapshot {
  readonly name: string;
  readonly movedTo: string;
  readonly error: SnapError;
}

export interface SnapshotterOptions {
  /** Told of every damaged snapshot file that `loadNewest` skips (after it was renamed `.broken`). */
  onBroken?: (broken: BrokenSnapshot) => void;
}

function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}

export function snapshotName(term: number, index: number): string {
  return `${hex16(term)}-${hex16(index)}${SNAP_SUFFIX}`;
}

function parseSnapshotName(name: string): SnapshotFile | null {
  const match = SNAP_NAME.exec(name);
  if (match === null) return null;
  const term = Number.parseInt(match[1]!, 16);
  const index = Number.parseInt(match[2]!, 16);
  if (!Number.isSafeInteger(term) || !Number.isSafeInteger(index)) return null;
  return { name, index, term };
}

function isIndex(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

export class Snapshotter {
  readonly dir: string;
  private readonly onBroken: ((broken: BrokenSnapshot) => void) | null;

  constructor(dir: string, options?: SnapshotterOptions) {
    this.dir = dir;
    this.onBroken = options?.onBroken ?? null;
  }

  /** Writes the snapshot durably; once this resolves, the file is there whole or a crash left no trace. */
  async save(snap: Snapshot): Promise<void> {
    if (typeof snap !== 'object' || snap === null || !isIndex(snap.index) || !isIndex(snap.term)) {
      throw new SnapInvalidArgumentError('snap: a snapshot needs a non-negative integer index and term');
    }
    if (!(snap.data instanceof Uint8Array)) throw new SnapInvalidArgumentError('snap: data must be a Uint8Array');
    if (snap.data.length > SNAPSHOT_DATA_BYTES_MAX) {
      throw new SnapInvalidArgumentError(`snap: data of ${snap.data.length} bytes is too large for one file`);
    }
    const bytes = encodeSnapshot(snap);
    const created = await mkdir(this.dir, { recursive: true });
    if (created !== undefined) await syncDir(dirname(created));
    const name = snapshotName(snap.term, snap.index);
    const temp = join(this.dir, `${name}${TEMP_SUFFIX}`);
    const handle = await open(temp, 'w');
    try {
      let done = 0;
      while (done < bytes.length) {
        const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, done);
        done += bytesWritten;
      }
      await handle.sync();
    } catch (err) {
      await handle.close();
      await rm(temp, { force: true });
      throw err;
    }
    await handle.close();
    await rename(temp, join(this.dir, name));
    await syncDir(this.dir);
  }

  /** Reads the snapshot at (index, term); SNAP_NOT_FOUND when absent, SNAP_CORRUPT / SNAP_CRC_MISMATCH when damaged. */
  async load(marker: WalSnapshotMarker): Promise<Snapshot> {
    if (typeof marker !== 'object' || marker === null || !isIndex(marker.index) || !isIndex(marker.term)) {
      throw new SnapInvalidArgumentError('snap: a marker needs a non-negative integer index and term');
    }
    return this.read({ name: snapshotName(marker.term, marker.index), index: marker.index, term: marker.term });
  }

  /**
   * The newest snapshot that reads back whole, or null when there is none. With `validMarkers`,
   * only snapshots whose index and term are among them are considered (those the WAL knows of).
   * Damaged files met on the way are renamed `<name>.broken`, reported to `onBroken`, and skipped.
   */
  async loadNewest(validMarkers?: readonly WalSnapshotMarker[]): Promise<Snapshot | null> {
    let files = await this.list();
    if (validMarkers !== undefined) {
      files = files.filter((file) => validMarkers.some((m) => m.index === file.index && m.term === file.term));
    }
    await this.removeTempFiles();
    for (const file of files) {
      try {
        return await this.read(file);
      } catch (err) {
        if (!(err instanceof SnapCorruptError || err instanceof SnapCrcMismatchError)) throw err;
        const movedTo = `${file.name}${BROKEN_SUFFIX}`;
        await rename(join(this.dir, file.name), join(this.dir, movedTo));
        await syncDir(this.dir);
        this.onBroken?.({ name: file.name, movedTo, error: err });
      }
    }
    return null;
  }

  /** The snapshot files in the directory, newest (highest index, then term) first. */
  async list(): Promise<SnapshotFile[]> {
    const files: SnapshotFile[] = [];
    for (const name of await this.names()) {
      const file = parseSnapshotName(name);
      if (file !== null) files.push(file);
    }
    return files.sort((a, b) => b.index - a.index || b.term - a.term);
  }

  /** Path of the backend file that belongs with the snapshot at `index`. */
  dbPath(index: number): string {
    if (!isIndex(index)) throw new SnapInvalidArgumentError(`snap: index must be a non-negative integer, got ${index}`);
    return join(this.dir, `${hex16(index)}.snap.db`);
  }

  /**
   * Removes the snapshot files and backend files of snapshots with an index below `index`.
   * Returns the names removed. Files renamed `.broken` are left for inspection.
   */
  async releaseOlderThan(index: number): Promise<string[]> {
    if (!isIndex(index)) throw new SnapInvalidArgumentError(`snap: index must be a non-negative integer, got ${index}`);
    const removed: string[] = [];
    for (const name of await this.names()) {
      const snap = parseSnapshotName(name);
      const db = DB_NAME.exec(name);
      const fileIndex = snap !== null ? snap.index : db !== null ? Number.parseInt(db[1]!, 16) : -1;
      if (fileIndex < 0 || fileIndex >= index) continue;
      await rm(join(this.dir, name), { force: true });
      removed.push(name);
    }
    if (removed.length > 0) await syncDir(this.dir);
    return removed.sort();
  }

  private async read(file: SnapshotFile): Promise<Snapshot> {
    let bytes: Buffer;
    try {
      bytes = await readFile(join(this.dir, file.name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new SnapNotFoundError(`snap: no snapshot ${file.name} in ${this.dir}`, { cause: err });
      }
      throw err;
    }
    return decodeSnapshot(bytes, file);
  }

  private async names(): Promise<string[]> {
    try {
      return await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  private async removeTempFiles(): Promise<void> {
    for (const name of await this.names()) {
      if (name.endsWith(`${SNAP_SUFFIX}${TEMP_SUFFIX}`)) await rm(join(this.dir, name), { force: true });
    }
  }
}

function writeU64(b: Buffer, at: number, value: number): void {
  b.writeUInt32LE(value % TWO_POW_32, at);
  b.writeUInt32LE(Math.floor(value / TWO_POW_32), at + 4);
}

function readU64(b: Buffer, at: number): number {
  return b.readUInt32LE(at + 4) * TWO_POW_32 + b.readUInt32LE(at);
}

export function encodeSnapshot(snap: Snapshot): Buffer {
  const bytes = Buffer.alloc(HEADER_BYTES + snap.data.length + TRAILER_BYTES);
  MAGIC.copy(bytes, 0);
  writeU64(bytes, 8, snap.term);
  writeU64(bytes, 16, snap.index);
  writeU64(bytes, 24, snap.data.length);
  bytes.set(snap.data, HEADER_BYTES);
  const end = HEADER_BYTES + snap.data.length;
  bytes.writeUInt32LE(crc32c(bytes.subarray(0, end)), end);
  // Check right after encoding, before the bytes go to disk.
  assert.equal(crc32c(bytes.subarray(0, end)), bytes.readUInt32LE(end));
  return bytes;
}

function decodeSnapshot(bytes: Buffer, file: SnapshotFile): Snapshot {
  const corrupt = (what: string) => new SnapCorruptError(`snap: ${file.name} ${what}`);
  if (bytes.length < HEADER_BYTES + TRAILER_BYTES) throw corrupt(`is ${bytes.length} bytes, shorter than a header`);
  if (!bytes.subarray(0, MAGIC.length).equals(MAGIC)) throw corrupt('is not a snapshot file (bad magic)');
  const dataBytes = readU64(bytes, 24);
  if (dataBytes !== bytes.length - HEADER_BYTES - TRAILER_BYTES) {
    throw corrupt(`declares ${dataBytes} bytes of data but holds ${bytes.length - HEADER_BYTES - TRAILER_BYTES}`);
  }
  const end = HEADER_BYTES + dataBytes;
  const stored = bytes.readUInt32LE(end);
  const computed = crc32c(bytes.subarray(0, end));
  if (stored !== computed) {
    throw new SnapCrcMismatchError(
      `snap: ${file.name} fails its checksum (stored ${stored.toString(16)}, computed ${computed.toString(16)})`,
    );
  }
  const term = readU64(bytes, 8);
  const index = readU64(bytes, 16);
  if (term !== file.term || index !== file.index) {
    throw corrupt(`holds the snapshot at index ${index} term ${term}, not the one its name says`);
  }
  // A view, not a copy: the file's buffer belongs to this snapshot alone.
  return { index, term, data: new Uint8Array(bytes.buffer, bytes.byteOffset + HEADER_BYTES, dataBytes) };
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
