// Small helpers shared by the log, the storage and the node.

import { entrySize } from './codec.ts';
import type { Entry } from './types.ts';

/** "No limit" for the byte limits of the configuration. */
export const NO_LIMIT = Number.MAX_SAFE_INTEGER;

/**
 * The longest prefix of `ents` whose encoded size stays within `maxSizeBytes`; always at least
 * one entry, so that progress is possible with entries larger than the limit.
 */
export function limitSize(ents: Entry[], maxSizeBytes: number): Entry[] {
  if (ents.length <= 1 || maxSizeBytes >= NO_LIMIT) return ents;
  let size = entrySize(ents[0]!);
  let limit = 1;
  for (; limit < ents.length; limit++) {
    size += entrySize(ents[limit]!);
    if (size > maxSizeBytes) break;
  }
  return limit === ents.length ? ents : ents.slice(0, limit);
}
