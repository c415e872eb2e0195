/** Reads etcdctl's `-w table` output back into rows keyed by the column headers. */

export type TableRow = Record<string, string>;

/**
 * `+---+---+` borders, one header line, then data lines: `| a | b |`. Returns one object per data
 * line, keyed by the header names (`ID`, `IS LEADER`, ...), values trimmed.
 */
export function parseTable(text: string): TableRow[] {
  const lines = text.split('\n').filter((l) => l.startsWith('|'));
  const cells = (line: string) =>
    line
      .slice(1, line.lastIndexOf('|'))
      .split('|')
      .map((c) => c.trim());
  const header = lines[0];
  if (header === undefined) throw new Error(`not an etcdctl table:\n${text}`);
  const names = cells(header);
  return lines.slice(1).map((line) => {
    const values = cells(line);
    if (values.length !== names.length) throw new Error(`row with ${values.length} cells, header has ${names.length}`);
    const row: TableRow = {};
    names.forEach((name, i) => {
      row[name] = values[i] ?? '';
    });
    return row;
  });
}
