/** The printer for an output format name, as etcdctl's NewPrinter chooses it. */
import { FieldsPrinter } from './fields.ts';
import { JsonPrinter } from './json.ts';
import type { Printer, PrinterOutput } from './printer.ts';
import { ProtobufPrinter } from './protobuf.ts';
import { SimplePrinter } from './simple.ts';
import { TablePrinter } from './table.ts';

export type { EpHashKV, EpHealth, EpStatus, Printer, WatchView } from './printer.ts';
export { SimplePrinter } from './simple.ts';

/** undefined for a format etcdctl does not have. */
export function newPrinter(format: string, isHex: boolean, out: PrinterOutput): Printer | undefined {
  switch (format) {
    case 'simple':
      return new SimplePrinter(out, isHex);
    case 'json':
      return new JsonPrinter(out);
    case 'fields':
      return new FieldsPrinter(out);
    case 'table':
      return new TablePrinter(out);
    case 'protobuf':
      return new ProtobufPrinter(out);
    default:
      return undefined;
  }
}
