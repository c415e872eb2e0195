// Preloaded (NODE_OPTIONS=--import=...) by test/cli/startup.test.ts: appends the URL of every
// module the process loads, one per line, to $MODULE_TRACE_FILE. Imported, it registers itself
// as module hooks; its `load` runs on Node's hooks thread (Node 20 and later).
import { appendFileSync } from 'node:fs';
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

if (isMainThread) register(import.meta.url);

export async function load(url, context, nextLoad) {
  appendFileSync(process.env.MODULE_TRACE_FILE, `${url}\n`);
  return nextLoad(url, context);
}
