#!/usr/bin/env node
// etcd-ts: the server. Flags, ETCD_* variables and --config-file as etcd's (`etcd-ts --help`).
import { readFileSync } from 'node:fs';
import { EtcdService } from '../src/api/etcd-service.ts';
import { startMember } from '../src/embed/index.ts';
import { ConfigError, parseCommandLine } from '../src/server/config.ts';
import { controlHeapGrowth } from '../src/server/heap-growth.ts';
import { createLogger } from '../src/server/logger.ts';
import { applyTiering } from '../src/server/v8-tiering.ts';

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

async function main(): Promise<number> {
  const tiering = applyTiering();
  let commandLine: ReturnType<typeof parseCommandLine>;
  try {
    commandLine = parseCommandLine(process.argv.slice(2), process.env, {
      readFile: (path) => readFileSync(path, 'utf8'),
    });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`etcd-ts: error verifying flags, ${err.message}. See 'etcd-ts --help'.\n`);
    return 1;
  }
  if (commandLine.kind !== 'config') {
    process.stdout.write(commandLine.text);
    return 0;
  }

  const { config } = commandLine;
  const logger = createLogger({ name: config.name, level: config.logLevel, outputs: config.logOutputs });
  for (const warning of commandLine.warnings) logger.warn(warning);
  if (tiering.length > 0) logger.info({ flags: tiering }, 'set V8 tiering thresholds');

  controlHeapGrowth();
  let member: Awaited<ReturnType<typeof startMember>>;
  try {
    member = await startMember(config, { logger, services: [new EtcdService()] });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    logger.error({ error: message }, 'failed to start etcd-ts');
    process.stderr.write(`etcd-ts: ${message}\n`);
    return 1;
  }

  const signal = await new Promise<string>((resolve) => {
    for (const name of SIGNALS) process.once(name, () => resolve(name));
  });
  logger.info({ signal }, 'received signal; shutting down');
  // A second signal while closing gives up on the graceful path.
  for (const name of SIGNALS) process.once(name, () => process.exit(1));
  await member.close();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`etcd-ts: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
