/**
 * Go's text/tabwriter as etcdctl's help uses it (minwidth 0, tabwidth 8, padding 1, tabs as
 * padding): cells end with a tab; the cells of one column across consecutive lines form a block
 * whose width is its widest cell plus the padding, rounded up to a multiple of the tab width.
 */

const TAB_WIDTH = 8;
const PADDING = 1;

interface Cell {
  text: string;
  width: number;
}

export function tabwrite(text: string): string {
  const lines: Cell[][] = text
    .split('\n')
    .map((line) => line.split('\t').map((cell) => ({ text: cell, width: [...cell].length })));
  const out: string[] = [];
  const widths: number[] = [];

  const writeLines = (line0: number, line1: number) => {
    for (let i = line0; i < line1; i++) {
      const line = lines[i]!;
      let s = '';
      for (let j = 0; j < line.length; j++) {
        const c = line[j]!;
        s += c.text;
        if (j < widths.length) {
          const cellWidth = Math.ceil(widths[j]! / TAB_WIDTH) * TAB_WIDTH;
          s += '\t'.repeat(Math.ceil((cellWidth - c.width) / TAB_WIDTH));
        }
      }
      out.push(s);
    }
  };

  const format = (line0: number, line1: number) => {
    const column = widths.length;
    for (let i = line0; i < line1; i++) {
      if (column >= lines[i]!.length - 1) continue;
      writeLines(line0, i);
      line0 = i;
      let width = 0;
      for (; i < line1; i++) {
        const line = lines[i]!;
        if (column >= line.length - 1) break;
        width = Math.max(width, line[column]!.width + PADDING);
      }
      widths.push(width);
      format(line0, i);
      widths.pop();
      line0 = i;
      i--;
    }
    writeLines(line0, line1);
  };

  format(0, lines.length);
  return out.join('\n');
}
