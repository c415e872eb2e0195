/**
 * The table format (etcdctl's printer_table.go over olekukonko/tablewriter): upper-case
 * centred headers, right-aligned cells, `+---+` borders, cells wider than 30 columns wrapped at
 * spaces with tablewriter's minimum-raggedness line breaking.
 */
import type { MemberListResponse } from '../../proto/index.ts';
import { humanizeBytes } from '../go-format.ts';
import {
  type EpHashKV,
  type EpHealth,
  type EpStatus,
  endpointHashKVRows,
  endpointHealthRows,
  endpointStatusRows,
  memberListRows,
  type PrinterOutput,
  UnsupportedPrinter,
} from './printer.ts';

/** tablewriter's MAX_ROW_WIDTH: cells are wrapped to this many columns where they have spaces. */
const CELL_WIDTH_MAX = 30;
/** tablewriter's penalty for a line longer than the limit. */
const WRAP_PENALTY = 100_000;

function width(text: string): number {
  return [...text].length;
}

/** tablewriter's WrapWords: break `words` into lines of at most `limit` columns, evenly. */
function wrapWords(words: readonly string[], limit: number): string[][] {
  const n = words.length;
  const length: number[][] = [];
  for (let i = 0; i < n; i++) {
    const row: number[] = new Array(n).fill(0);
    row[i] = width(words[i]!);
    for (let j = i + 1; j < n; j++) row[j] = row[j - 1]! + 1 + width(words[j]!);
    length.push(row);
  }
  const breakAt: number[] = new Array(n).fill(0);
  const cost: number[] = new Array(n).fill(2 ** 31 - 1);
  for (let i = n - 1; i >= 0; i--) {
    if (length[i]![n - 1]! <= limit) {
      cost[i] = 0;
      breakAt[i] = n;
    } else {
      for (let j = i + 1; j < n; j++) {
        const d = limit - length[i]![j - 1]!;
        let c = d * d + cost[j]!;
        if (length[i]![j - 1]! > limit) c += WRAP_PENALTY;
        if (c < cost[i]!) {
          cost[i] = c;
          breakAt[i] = j;
        }
      }
    }
  }
  const lines: string[][] = [];
  for (let i = 0; i < n; i = breakAt[i]!) lines.push(words.slice(i, breakAt[i]));
  return lines;
}

/** tablewriter's WrapString. */
function wrapString(text: string, limit: number): string[] {
  const words = text.replaceAll('\n', ' ').split(' ');
  let lim = limit;
  for (const w of words) lim = Math.max(lim, width(w));
  return wrapWords(words, lim).map((line) => line.join(' '));
}

/**
 * A cell's lines and the width it asks of its column (tablewriter's parseDimension with
 * auto-wrap on: a wrapped cell keeps the width limit even when its lines came out shorter).
 */
function cellLines(text: string): { lines: string[]; width: number } {
  const raw = text.split('\n');
  let maxWidth = Math.max(...raw.map(width));
  if (maxWidth > CELL_WIDTH_MAX) maxWidth = CELL_WIDTH_MAX;
  let newMaxWidth = maxWidth;
  const lines: string[] = [];
  raw.forEach((para, i) => {
    if (i > 0) lines.push(' ');
    for (const line of wrapString(para, maxWidth)) {
      newMaxWidth = Math.max(newMaxWidth, width(line));
      lines.push(line);
    }
  });
  return { lines, width: newMaxWidth };
}

function padCenter(text: string, w: number): string {
  const gap = w - width(text);
  if (gap <= 0) return text;
  const left = Math.floor(gap / 2);
  return ' '.repeat(left) + text + ' '.repeat(gap - left);
}

function padLeft(text: string, w: number): string {
  const gap = w - width(text);
  return gap <= 0 ? text : ' '.repeat(gap) + text;
}

/** Renders a table as tablewriter does with etcdctl's settings. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const titles = header.map((h) => {
    const t = h.replaceAll('_', ' ').replaceAll('.', ' ').trim();
    return (t.length === 0 && h.length > 0 ? ' ' : t).toUpperCase();
  });
  const headCells = header.map(cellLines);
  const bodyCells = rows.map((row) => row.map(cellLines));
  const widths = titles.map((_, c) => {
    let w = headCells[c]!.width;
    for (const row of bodyCells) w = Math.max(w, row[c]?.width ?? 0);
    return w;
  });
  const headLines = headCells.map((cell, c) =>
    cell.lines.map((line) => (line === header[c] ? titles[c]! : line.toUpperCase())),
  );
  const bodyLines = bodyCells.map((row) => row.map((cell) => cell.lines));
  const border = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+\n`;
  let out = border;
  const headHeight = Math.max(...headLines.map((l) => l.length));
  for (let y = 0; y < headHeight; y++) {
    out += `|${titles.map((_, c) => ` ${padCenter(headLines[c]![y] ?? '', widths[c]!)} `).join('|')}|\n`;
  }
  out += border;
  for (const row of bodyLines) {
    const height = Math.max(...row.map((l) => l.length));
    for (let y = 0; y < height; y++) {
      out += `|${widths.map((w, c) => ` ${padLeft(row[c]?.[y] ?? '', w)} `).join('|')}|\n`;
    }
  }
  return out + border;
}

export class TablePrinter extends UnsupportedPrinter {
  constructor(out: PrinterOutput) {
    super('table', out);
  }

  private table(t: { header: string[]; rows: string[][] }): void {
    this.out.stdout.write(renderTable(t.header, t.rows));
  }

  override memberList(r: MemberListResponse): void {
    this.table(memberListRows(r));
  }

  override endpointHealth(list: readonly EpHealth[]): void {
    this.table(endpointHealthRows(list));
  }

  override endpointStatus(list: readonly EpStatus[]): void {
    this.table(endpointStatusRows(list, humanizeBytes));
  }

  override endpointHashKV(list: readonly EpHashKV[]): void {
    this.table(endpointHashKVRows(list));
  }
}
