// Segment files: naming, listing, preallocation and the pipeline that prepares the next one.

import { readdirSync, writeSync } from 'node:fs';
import { type FileHandle, open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { WalCorruptError } from './errors.ts';
import { Preallocation } from './types.ts';

const SEGMENT_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;
export const SEGMENT_SUFFIX = '.wal';
export const TEMP_SUFFIX = '.tmp';
/** Zeros are written in chunks of this size when preallocating with `zeros`. */
const ZERO_CHUNK_BYTES = 1024 * 1024;

export interface SegmentInfo {
  /** Position of the segment in the log: 0, 1, 2, ... with no gaps. */
  readonly seq: number;
  /** Index of the first entry written after the segment was cut (last index + 1 at that time). */
  readonly index: number;
  readonly name: string;
}

export function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}

export function segmentName(seq: number, index: number): string {
  return `${hex16(seq)}-${hex16(index)}${SEGMENT_SUFFIX}`;
}

export function parseSegmentName(name: string): SegmentInfo | null {
  const match = SEGMENT_NAME.exec(name);
  if (match === null) return null;
  const seq = Number.parseInt(match[1]!, 16);
  const index = Number.parseInt(match[2]!, 16);
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(index)) return null;
  return { seq, index, name };
}

/** True when `dir` holds at least one segment file. */
export function hasSegments(dir: string): boolean {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
  return names.some((name) => parseSegmentName(name) !== null);
}

/** The segments of `dir` ordered by sequence. */
export async function listSegments(dir: string): Promise<SegmentInfo[]> {
  const segments: SegmentInfo[] = [];
  for (const name of await readdir(dir)) {
    const info = parseSegmentName(name);
    if (info !== null) segments.push(info);
  }
  return segments.sort((a, b) => a.seq - b.seq);
}

/**
 * Throws WalCorruptError when the sequence numbers of `segments` have a hole: a segment in the
 * middle is missing. (Start indexes may go down from one segment to the next: an overwrite
 * lowers the last index before a cut.)
 */
export function checkContiguous(segments: readonly SegmentInfo[]): void {
  for (let i = 1; i < segments.length; i++) {
    const previous = segments[i - 1]!;
    const current = segments[i]!;
    if (current.seq !== previous.seq + 1) {
      throw new WalCorruptError(
        `wal: segment sequence jumps from ${previous.seq} to ${current.seq}; a segment is missing`,
        { file: current.name, offset: 0 },
      );
    }
  }
}

/** Removes leftovers of a segment that was being prepared when the process stopped. */
export async function removeTempFiles(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name.endsWith(TEMP_SUFFIX)) await rm(join(dir, name), { force: true });
  }
}

/** fsync a directory so that the creation, rename or removal of its entries is durable. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Reserves `sizeBytes` for a file that is empty or shorter. */
export async function preallocate(handle: FileHandle, sizeBytes: number, mode: Preallocation): Promise<void> {
  if (mode === Preallocation.None) return;
  const { size } = await handle.stat();
  if (size >= sizeBytes) return;
  if (mode === Preallocation.Sparse) {
    await handle.truncate(sizeBytes);
    return;
  }
  const zeros = Buffer.alloc(Math.min(ZERO_CHUNK_BYTES, sizeBytes - size));
  for (let at = size; at < sizeBytes; ) {
    const n = Math.min(zeros.length, sizeBytes - at);
    const { bytesWritten } = await handle.write(zeros, 0, n, at);
    at += bytesWritten;
  }
}

/** Writes all of `bytes` at `position`, looping over short writes. */
export async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`wal: write returned ${bytesWritten} bytes`);
    done += bytesWritten;
  }
}

/** As writeAll, on the calling thread (the write path's synchronous saves). */
export function writeAllSync(handle: FileHandle, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) {
    const written = writeSync(handle.fd, bytes, done, bytes.length - done, position + done);
    if (written <= 0) throw new Error(`wal: write returned ${written} bytes`);
    done += written;
  }
}

export interface PreparedFile {
  readonly path: string;
  readonly handle: FileHandle;
}

/**
 * Prepares the next segment file in the background (as etcd's file pipeline does), so that a
 * cut does not wait for preallocation. The file has a temporary name until the cut renames it.
 */
export class SegmentPipeline {
  private readonly dir: string;
  private readonly sizeBytes: number;
  private readonly mode: Preallocation;
  private next: Promise<PreparedFile> | null;
  private count: number;

  constructor(dir: string, sizeBytes: number, mode: Preallocation) {
    this.dir = dir;
    this.sizeBytes = sizeBytes;
    this.mode = mode;
    this.next = null;
    this.count = 0;
  }

  /** Starts preparing a file if none is under way. */
  warm(): void {
    if (this.next !== null) return;
    const path = join(this.dir, `${this.count++ % 2}${SEGMENT_SUFFIX}${TEMP_SUFFIX}`);
    const prepared = this.prepare(path);
    // A failure surfaces from take(); until then it must not count as unhandled.
    prepared.catch(() => {});
    this.next = prepared;
  }

  /** The prepared file; the caller owns it from now on. */
  async take(): Promise<PreparedFile> {
    this.warm();
    const next = this.next!;
    this.next = null;
    return next;
  }

  /** Closes and removes a prepared file that was never taken. */
  async close(): Promise<void> {
    const next = this.next;
    this.next = null;
    if (next === null) return;
    try {
      const file = await next;
      await file.handle.close();
      await rm(file.path, { force: true });
    } catch {
      // Preparation had failed; nothing is left to release but a temp file that open() removes.
    }
  }

  private async prepare(path: string): Promise<PreparedFile> {
    const handle = await open(path, 'w+');
    try {
      await preallocate(handle, this.sizeBytes, this.mode);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return { path, handle };
  }
}

export function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
