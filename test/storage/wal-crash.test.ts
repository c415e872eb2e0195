// Kills a writing process at random moments and checks that every acknowledged save survives
// and that nothing after a torn write is returned.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Wal, type WalSnapshotMarker } from '../../src/storage/wal/index.ts';
import { hasExpectedData, prng, tempDir } from './fixtures/wal-helpers.ts';

const WRITER = fileURLToPath(new URL('./fixtures/wal-writer.ts', import.meta.url));
const SEED = 20_240_611;
const ROUNDS = 8;
const SEGMENT_BYTES = 64 * 1024;
const ROUND_TIMEOUT_MS = 15_000;

/** What the parent knows is durable: the term of every acknowledged index, and the newest marker. */
interface Model {
  terms: number[]; // terms[i] is the term of entry i (index 0 unused)
  marker: WalSnapshotMarker;
  commit: number;
}

interface RoundResult {
  acks: number;
  lines: string[];
  stderr: string;
}

/** Runs the writer until `killAfterMs` past its `ready` line, SIGKILLs it, and applies its acks to the model. */
async function runWriter(
  dir: string,
  seed: number,
  term: number,
  model: Model,
  killAfterMs: number,
  preallocate: string,
  fsync: string,
  killAfterSnapshot = false,
): Promise<RoundResult> {
  const args = [
    '--import',
    'tsx',
    WRITER,
    dir,
    String(seed),
    String(term),
    String(model.marker.index),
    String(model.marker.term),
    String(SEGMENT_BYTES),
    preallocate,
    fsync,
  ];
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const result: RoundResult = { acks: 0, lines: [], stderr: '' };
  let pending = '';
  let killTimer: NodeJS.Timeout | undefined;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = setTimeout(() => child.kill('SIGKILL'), ROUND_TIMEOUT_MS);
  child.stderr!.on('data', (chunk: Buffer) => {
    result.stderr += chunk.toString();
  });
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      result.lines.push(line);
      applyLine(line, model, result);
      if (killAfterSnapshot && line.startsWith('snap')) {
        clearTimeout(killTimer);
        killTimer = setTimeout(() => child.kill('SIGKILL'), 5);
      }
      if (line.startsWith('ready') && killTimer === undefined) {
        killTimer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
      newline = pending.indexOf('\n');
    }
  });
  try {
    await exited;
  } finally {
    clearTimeout(deadline);
    clearTimeout(killTimer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  assert.equal(child.signalCode, 'SIGKILL', `the writer was killed, not ended on its own: ${result.stderr}`);
  return result;
}

function applyLine(line: string, model: Model, result: RoundResult): void {
  const [kind, ...fields] = line.split(' ');
  const numbers = fields.map(Number);
  if (kind === 'ack') {
    const [first, last, term, commit] = numbers as [number, number, number, number];
    assert.ok(first <= model.terms.length, `ack ${first} leaves no gap after ${model.terms.length - 1}`);
    model.terms.length = first; // an overwrite drops everything after it
    for (let i = first; i <= last; i++) model.terms[i] = term;
    if (commit >= 0) model.commit = commit;
    result.acks++;
  } else if (kind === 'snap') {
    const [index, term] = numbers as [number, number];
    model.marker = { index, term };
  }
}

test('every acknowledged save survives SIGKILL at random moments', async (t) => {
  const root = await tempDir('wal-crash');
  const dir = join(root.path, 'wal');
  const random = prng(SEED);
  const model: Model = { terms: [0], marker: { index: 0, term: 0 }, commit: 0 };
  let totalAcks = 0;
  let tornRounds = 0;
  let unackedRounds = 0;
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const killAfterMs = 20 + Math.floor(random() * 250);
      const preallocate = random() < 0.3 ? 'zeros' : 'sparse';
      // Rounds without fsync spend their time in write(), where a kill tears the write.
      const fsync = round % 2 === 0 ? 'off' : 'on';
      // On a slow machine the writers may not reach a snapshot in their short lives: the last
      // round then runs until its first snapshot, so that releasing segments is always covered.
      const needSnapshot = round === ROUNDS && model.marker.index === 0;
      const { acks } = await runWriter(
        dir,
        SEED + round,
        round,
        model,
        needSnapshot ? 20_000 : killAfterMs,
        preallocate,
        fsync,
        needSnapshot,
      );
      totalAcks += acks;

      const { wal, entries, hardState, repairedTail } = await Wal.open(dir, model.marker, {
        segmentSizeBytes: SEGMENT_BYTES,
      });
      try {
        const ackedLast = model.terms.length - 1;
        // Entries are consecutive after the marker and every one is intact.
        entries.forEach((entry, i) => {
          assert.equal(entry.index, model.marker.index + 1 + i, 'consecutive after the marker');
          assert.ok(hasExpectedData(entry), `entry ${entry.index} intact`);
        });
        const lastIndex = entries.at(-1)?.index ?? model.marker.index;
        // Every acknowledged entry is there, with the term it was acknowledged with.
        assert.ok(lastIndex >= ackedLast, `round ${round}: acked up to ${ackedLast}, log ends at ${lastIndex}`);
        for (let index = model.marker.index + 1; index <= ackedLast; index++) {
          const entry = entries[index - model.marker.index - 1]!;
          if (entry.term === model.terms[index]) continue;
          // A round starts by overwriting its last few (uncommitted) entries, as a new leader
          // would; that save may reach the disk and the kill come before its ack is read.
          assert.ok(
            index > model.commit && entry.term === round,
            `round ${round}: term of acked entry ${index} is ${entry.term}, acknowledged with ${model.terms[index]}`,
          );
        }
        // Anything past the acknowledged ones was written, unacknowledged, by this round's writer.
        for (const entry of entries) if (entry.index > ackedLast) assert.equal(entry.term, round);
        if (lastIndex > ackedLast) unackedRounds++;
        if (repairedTail !== null) tornRounds++;
        assert.ok(hardState.commit >= model.commit, `round ${round}: commit ${hardState.commit} < ${model.commit}`);
        assert.ok(hardState.commit <= lastIndex);
        // What the log holds now is the base of the next round.
        model.terms.length = model.marker.index + 1;
        for (const entry of entries) model.terms[entry.index] = entry.term;
        model.commit = hardState.commit;
      } finally {
        await wal.close();
      }
    }
    assert.ok(totalAcks > ROUNDS * 5, `the writers acknowledged ${totalAcks} saves`);
    assert.ok(model.marker.index > 0, 'snapshots were taken and segments released along the way');
    // Reported for information: how often unacknowledged writes had reached the file, and how
    // often the kill tore a write (the open cut a partial record off).
    t.diagnostic(
      `acks ${totalAcks}, unacknowledged entries on disk in ${unackedRounds} rounds, torn tails ${tornRounds}`,
    );
  } finally {
    await root.remove();
  }
});
