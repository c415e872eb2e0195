// bbolt database files (etcd's backend and snapshot format): writer, reader, layout constants.

export { BboltCorruptError, BboltError, BboltUsageError } from './errors.ts';
export { fnv1a64, type Meta, PAGE_SIZE } from './format.ts';
export { type BboltBucket, type BboltOpenOptions, BboltReader, type LeafEntries } from './reader.ts';
export { type BboltFileSummary, BboltWriter, type BboltWriterOptions, FIRST_BODY_PAGE } from './writer.ts';
