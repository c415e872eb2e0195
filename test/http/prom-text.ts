/**
 * A strict reader of the Prometheus text exposition format (0.0.4), for checking a /metrics
 * scrape: every sample belongs to a family announced by `# HELP` and `# TYPE` before it, names
 * and labels are well formed, values parse, no series repeats, and histograms hold together
 * (`le` bounds increasing, cumulative counts non-decreasing, the `+Inf` bucket equal to
 * `_count`). Anything else throws with the offending line.
 */

export interface Sample {
  /** The sample's own name (`x_bucket`, `x_sum`, `x_count` for a histogram `x`). */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  readonly samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(text: string, line: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad value ${text} in: ${line}`);
  return Number(text);
}

/** Parses `{a="x",b="y"}` at `text`; returns the labels and what follows the brace. */
function parseLabels(text: string, line: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1;
  for (;;) {
    if (text[i] === '}') return { labels, rest: text.slice(i + 1) };
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`bad labels in: ${line}`);
    const name = text.slice(i, eq);
    if (!LABEL.test(name)) throw new Error(`bad label name ${name} in: ${line}`);
    if (Object.hasOwn(labels, name)) throw new Error(`repeated label ${name} in: ${line}`);
    if (text[eq + 1] !== '"') throw new Error(`unquoted label value in: ${line}`);
    let value = '';
    let j = eq + 2;
    for (;;) {
      const c = text[j];
      if (c === undefined) throw new Error(`unterminated label value in: ${line}`);
      if (c === '"') break;
      if (c === '\\') {
        const e = text[j + 1];
        if (e === 'n') value += '\n';
        else if (e === '\\' || e === '"') value += e;
        else throw new Error(`bad escape in: ${line}`);
        j += 2;
        continue;
      }
      value += c;
      j++;
    }
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
    else if (text[i] !== '}') throw new Error(`bad label separator in: ${line}`);
  }
}

/** The family a sample name belongs to: `x_bucket` of histogram `x` belongs to `x`. */
function familyOf(sampleName: string, families: ReadonlyMap<string, Family>): Family | undefined {
  const direct = families.get(sampleName);
  if (direct !== undefined) return direct;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sampleName.endsWith(suffix)) continue;
    const f = families.get(sampleName.slice(0, -suffix.length));
    if (f !== undefined && (f.type === 'histogram' || f.type === 'summary')) return f;
  }
  return undefined;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  const pending = new Map<string, string>();
  if (text !== '' && !text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) {
      const rest = line.slice(7);
      const sp = rest.indexOf(' ');
      const name = sp < 0 ? rest : rest.slice(0, sp);
      if (!NAME.test(name)) throw new Error(`bad metric name in: ${line}`);
      if (families.has(name) || pending.has(name)) throw new Error(`second HELP for ${name}`);
      pending.set(
        name,
        sp < 0
          ? ''
          : rest
              .slice(sp + 1)
              .replace(/\\n/g, '\n')
              .replace(/\\\\/g, '\\'),
      );
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      if (name === undefined || type === undefined || !TYPES.has(type)) throw new Error(`bad TYPE line: ${line}`);
      if (families.has(name)) throw new Error(`second TYPE for ${name}`);
      const help = pending.get(name);
      if (help === undefined) throw new Error(`TYPE before HELP for ${name}`);
      pending.delete(name);
      families.set(name, { name, help, type: type as Family['type'], samples: [] });
      continue;
    }
    if (line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    const nameEnd = brace >= 0 && brace < space ? brace : space;
    if (nameEnd <= 0) throw new Error(`bad sample line: ${line}`);
    const name = line.slice(0, nameEnd);
    if (!NAME.test(name)) throw new Error(`bad sample name in: ${line}`);
    let labels: Record<string, string> = {};
    let rest = line.slice(nameEnd);
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, line));
    const fields = rest.trim().split(/\s+/);
    if (fields.length < 1 || fields.length > 2 || fields[0] === '') throw new Error(`bad sample value in: ${line}`);
    const value = parseValue(fields[0]!, line);
    const family = familyOf(name, families);
    if (family === undefined) throw new Error(`sample without HELP and TYPE: ${line}`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new Error(`repeated series: ${line}`);
    seen.add(key);
    if (family.type === 'counter' && !(value >= 0)) throw new Error(`negative counter: ${line}`);
    family.samples.push({ name, labels, value });
  }
  if (pending.size > 0) throw new Error(`HELP without TYPE: ${[...pending.keys()].join(', ')}`);
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

/** The series of a histogram, by their labels without `le`. */
export function histogramSeries(
  f: Family,
): Map<string, { bounds: number[]; counts: number[]; sum: number; count: number }> {
  const out = new Map<string, { bounds: number[]; counts: number[]; sum: number; count: number }>();
  const get = (labels: Readonly<Record<string, string>>) => {
    const { le: _le, ...rest } = labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    let s = out.get(key);
    if (s === undefined) {
      s = { bounds: [], counts: [], sum: Number.NaN, count: Number.NaN };
      out.set(key, s);
    }
    return s;
  };
  for (const sample of f.samples) {
    const s = get(sample.labels);
    if (sample.name === `${f.name}_bucket`) {
      const le = sample.labels.le;
      if (le === undefined) throw new Error(`${f.name}_bucket without le`);
      s.bounds.push(parseValue(le, le));
      s.counts.push(sample.value);
    } else if (sample.name === `${f.name}_sum`) s.sum = sample.value;
    else if (sample.name === `${f.name}_count`) s.count = sample.value;
    else throw new Error(`unexpected sample ${sample.name} in histogram ${f.name}`);
  }
  return out;
}

function checkHistogram(f: Family): void {
  for (const [key, s] of histogramSeries(f)) {
    const where = `${f.name}${key}`;
    if (s.bounds.at(-1) !== Number.POSITIVE_INFINITY) throw new Error(`${where}: no +Inf bucket`);
    for (let i = 1; i < s.bounds.length; i++) {
      if (!(s.bounds[i]! > s.bounds[i - 1]!)) throw new Error(`${where}: le bounds not increasing`);
      if (s.counts[i]! < s.counts[i - 1]!) throw new Error(`${where}: bucket counts decrease`);
    }
    if (s.counts.at(-1) !== s.count) throw new Error(`${where}: +Inf bucket ${s.counts.at(-1)} != count ${s.count}`);
    if (Number.isNaN(s.sum)) throw new Error(`${where}: no _sum`);
  }
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when none. */
export function sampleValue(
  families: ReadonlyMap<string, Family>,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number | undefined {
  const f = familyOf(name, families);
  const matching = f?.samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (matching === undefined || matching.length === 0) return undefined;
  if (matching.length > 1) throw new Error(`${matching.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return matching[0]!.value;
}
