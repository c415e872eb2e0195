/**
 * `snapshot save|status|restore` (etcdctl's snapshot_command.go and clientv3/snapshot): files
 * in etcd's format (a bbolt database followed by its SHA-256), so snapshots move between etcd
 * and etcd-ts in both directions. `status` and `restore` work on files with the storage engine,
 * which they load when they run: the other commands start without it.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { GrpcCallError } from '../../client/channel.ts';
import { MaintenanceService } from '../../proto/index.ts';
import type { SnapshotStatus } from '../../server/snapshot.ts';
import { hasSnapshotHash, SHA256_BYTES } from '../../server/snapshot-file.ts';
import { CliExit, type CommandContext, type CommandSpec, ExitCode, flag } from '../command.ts';
import { FlagType } from '../flags.ts';
import { goStringList, humanizeBytes } from '../go-format.ts';
import { renderTable } from '../printers/table.ts';

const DEFAULT_NAME = 'default';
const DEFAULT_PEER_URL = 'http://localhost:2380';

const save: CommandSpec = {
  use: 'save <filename>',
  short: 'Stores an etcd node backend snapshot to a given file',
  run: async (ctx) => {
    if (ctx.args.length !== 1) throw new CliExit(ExitCode.BAD_ARGS, 'snapshot save expects one argument');
    const path = ctx.args[0]!;
    const endpoints = ctx.endpoints();
    if (endpoints.length !== 1) {
      throw new CliExit(
        ExitCode.INTERRUPTED,
        `snapshot must be requested to one selected node, not multiple ${goStringList(endpoints)}`,
      );
    }
    const client = await ctx.client();
    // Without an explicit --command-timeout, a snapshot takes as long as it takes (as etcdctl).
    const timeoutMs = ctx.flags.changed('command-timeout') ? ctx.commandTimeoutMs() : undefined;
    const partPath = `${path}.part`;
    rmSync(partPath, { recursive: true, force: true });
    const fd = openSync(partPath, 'w', 0o600);
    let closed = false;
    try {
      const size = await receiveSnapshot(ctx, client, fd, timeoutMs);
      if (!hasSnapshotHash(size.bytes)) {
        throw new CliExit(ExitCode.INTERRUPTED, `sha256 checksum not found [bytes: ${size.bytes}]`);
      }
      if (!size.hashMatches) throw new CliExit(ExitCode.INTERRUPTED, 'expected sha256 does not match the snapshot');
      fsyncSync(fd);
      closeSync(fd);
      closed = true;
      renameSync(partPath, path);
    } catch (err) {
      if (!closed) closeSync(fd);
      rmSync(partPath, { force: true });
      throw err;
    }
    ctx.io.stdout.write(`Snapshot saved at ${path}\n`);
  },
};

/**
 * Streams Maintenance.Snapshot into `fd` (synchronous writes: the stream waits for the disk),
 * hashing all but the last 32 bytes, which must be their SHA-256.
 */
function receiveSnapshot(
  ctx: CommandContext,
  client: Awaited<ReturnType<CommandContext['client']>>,
  fd: number,
  timeoutMs: number | undefined,
): Promise<{ bytes: number; hashMatches: boolean }> {
  return new Promise((resolve, reject) => {
    const sha = createHash('sha256');
    let held: Buffer = Buffer.alloc(0);
    let bytes = 0;
    let failure: Error | undefined;
    let timer: NodeJS.Timeout | undefined;
    const onInterrupt = () => {
      failure ??= new CliExit(ExitCode.INTERRUPTED, 'context canceled');
      opened.then(
        ({ stream }) => stream.cancel(),
        () => {},
      );
    };
    const opened = client.openStream(MaintenanceService.Snapshot, {
      onMessage(msg) {
        if (failure !== undefined) return;
        try {
          const blob = Buffer.from(msg.blob);
          let at = 0;
          while (at < blob.length) at += writeSync(fd, blob, at, blob.length - at, bytes + at);
          bytes += blob.length;
          // Everything but the last 32 bytes seen so far is database: hash it.
          const joined = held.length === 0 ? blob : Buffer.concat([held, blob]);
          const cut = Math.max(0, joined.length - SHA256_BYTES);
          sha.update(joined.subarray(0, cut));
          held = Buffer.from(joined.subarray(cut));
        } catch (err) {
          failure = err instanceof Error ? err : new Error(String(err));
          opened.then(
            ({ stream }) => stream.cancel(),
            () => {},
          );
        }
      },
      onClose(error) {
        clearTimeout(timer);
        ctx.interrupted.removeEventListener('abort', onInterrupt);
        if (failure !== undefined) reject(failure);
        else if (error !== undefined) reject(new CliExit(ExitCode.INTERRUPTED, grpcMessage(error)));
        else resolve({ bytes, hashMatches: held.length === SHA256_BYTES && sha.digest().equals(held) });
      },
    });
    opened.then(
      ({ stream }) => {
        stream.write({});
        stream.end();
        if (timeoutMs !== undefined) {
          timer = setTimeout(() => {
            failure ??= new CliExit(ExitCode.INTERRUPTED, 'context deadline exceeded');
            stream.cancel();
          }, timeoutMs);
        }
      },
      (err: unknown) => reject(new CliExit(ExitCode.INTERRUPTED, err instanceof Error ? err.message : String(err))),
    );
    ctx.interrupted.addEventListener('abort', onInterrupt, { once: true });
  });
}

function grpcMessage(err: GrpcCallError | Error): string {
  return err instanceof GrpcCallError ? err.details : err.message;
}

const status: CommandSpec = {
  use: 'status <filename>',
  short: 'Gets backend snapshot status of a given file',
  long:
    'When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.\n' +
    'The items in the lists are hash, revision, total keys, total size.\n',
  run: async (ctx) => {
    if (ctx.args.length !== 1) {
      throw new CliExit(ExitCode.BAD_ARGS, 'snapshot status requires exactly one argument');
    }
    ctx.printer();
    const format = ctx.flags.string('write-out');
    const { snapshotStatus } = await import('../../server/snapshot.ts');
    let ds: SnapshotStatus;
    try {
      ds = await snapshotStatus(ctx.args[0]!);
    } catch (err) {
      throw new CliExit(ExitCode.ERROR, fileError(err));
    }
    ctx.io.stdout.write(formatDbStatus(ds, format));
  },
};

/** etcdctl's DBStatus printers. */
export function formatDbStatus(ds: SnapshotStatus, format: string): string {
  const header = ['hash', 'revision', 'total keys', 'total size'];
  const row = [ds.hash.toString(16), String(ds.revision), String(ds.totalKey), humanizeBytes(ds.totalSize)];
  switch (format) {
    case 'simple':
      return `${row.join(', ')}\n`;
    case 'json':
      return `${JSON.stringify({ hash: ds.hash, revision: ds.revision, totalKey: ds.totalKey, totalSize: ds.totalSize })}\n`;
    case 'table':
      return renderTable(header, [row]);
    case 'fields':
      return `"Hash" : ${ds.hash}\n"Revision" : ${ds.revision}\n"Keys" : ${ds.totalKey}\n"Size" : ${ds.totalSize}\n`;
    default:
      throw new CliExit(ExitCode.BAD_FEATURE, `${format} not supported as output format`);
  }
}

const restore: CommandSpec = {
  use: 'restore <filename> [options]',
  short: 'Restores an etcd member snapshot to an etcd directory',
  flags: [
    flag('data-dir', FlagType.STRING, '', 'Path to the data directory'),
    flag('wal-dir', FlagType.STRING, '', 'Path to the WAL directory (use --data-dir if none given)'),
    flag(
      'initial-cluster',
      FlagType.STRING,
      `${DEFAULT_NAME}=${DEFAULT_PEER_URL}`,
      'Initial cluster configuration for restore bootstrap',
    ),
    flag(
      'initial-cluster-token',
      FlagType.STRING,
      'etcd-cluster',
      'Initial cluster token for the etcd cluster during restore bootstrap',
    ),
    flag(
      'initial-advertise-peer-urls',
      FlagType.STRING,
      DEFAULT_PEER_URL,
      "List of this member's peer URLs to advertise to the rest of the cluster",
    ),
    flag('name', FlagType.STRING, DEFAULT_NAME, 'Human-readable name for this member'),
    flag(
      'skip-hash-check',
      FlagType.BOOL,
      'false',
      'Ignore snapshot integrity hash value (required if copied from data directory)',
    ),
  ],
  run: async (ctx) => {
    if (ctx.args.length !== 1) throw new CliExit(ExitCode.BAD_ARGS, 'snapshot restore requires exactly one argument');
    const f = ctx.flags;
    const [{ parseInitialCluster }, { RestoreError, restoreSnapshot }] = await Promise.all([
      import('../../server/config.ts'),
      import('../../server/restore.ts'),
    ]);
    let initialCluster: Map<string, string[]>;
    try {
      initialCluster = parseInitialCluster(f.string('initial-cluster'));
    } catch (err) {
      throw new CliExit(ExitCode.BAD_ARGS, err instanceof Error ? err.message : String(err));
    }
    const name = f.string('name');
    const dataDir = f.string('data-dir') === '' ? `${name}.etcd` : f.string('data-dir');
    try {
      const result = await restoreSnapshot({
        snapshotPath: ctx.args[0]!,
        dataDir,
        walDir: f.string('wal-dir'),
        name,
        initialCluster,
        initialClusterToken: f.string('initial-cluster-token'),
        initialAdvertisePeerUrls: f.string('initial-advertise-peer-urls').split(','),
        skipHashCheck: f.bool('skip-hash-check'),
      });
      ctx.io.stderr.write(
        `${JSON.stringify({
          level: 'info',
          ts: Date.now() / 1000,
          msg: 'restored snapshot',
          path: ctx.args[0],
          'wal-dir': result.walDir,
          'data-dir': result.dataDir,
          'snap-dir': result.snapDir,
          'member-id': result.memberId.toString(16),
          'cluster-id': result.clusterId.toString(16),
          revision: result.revision,
        })}\n`,
      );
    } catch (err) {
      throw new CliExit(ExitCode.ERROR, err instanceof RestoreError ? err.message : fileError(err));
    }
  },
};

/** An error as etcdctl words it (`open x: no such file or directory`). */
function fileError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const op = e?.syscall === 'stat' ? 'stat' : 'open';
  if (e?.code === 'ENOENT' && typeof e.path === 'string') return `${op} ${e.path}: no such file or directory`;
  if (e?.code === 'EACCES' && typeof e.path === 'string') return `${op} ${e.path}: permission denied`;
  return err instanceof Error ? err.message : String(err);
}

export const snapshotCommand: CommandSpec = {
  use: 'snapshot <subcommand>',
  short: 'Manages etcd node snapshots',
  subcommands: [save, restore, status],
};
