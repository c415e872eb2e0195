/**
 * Prometheus metrics: counters, gauges and histograms, with or without labels, kept per member
 * (tests run several members in one process), and the text exposition format (0.0.4) as the
 * Go client writes it, so that etcd's dashboards and alerts read etcd-ts unchanged: families
 * sorted by name, series by label values, label names sorted with `le` last, numbers as Go's
 * strconv formats a float64 (`1.2e+07`, `+Inf`).
 *
 * The server's own metrics (`ServerMetrics`, at the end) are the ones it must count as things
 * happen; what can be read off the member's state is gauged at scrape time by the API layer.
 */

export const MetricType = { Counter: 'counter', Gauge: 'gauge', Histogram: 'histogram' } as const;
export type MetricType = (typeof MetricType)[keyof typeof MetricType];

/** Series of one family beyond this many are refused (a label fed by client input would grow without end). */
export const SERIES_PER_FAMILY_MAX = 10_000;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A metric family: its name, help and type, and its series written as text. */
export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  /** Appends the family's sample lines, series sorted; nothing when it has no series. */
  writeSamples(out: string[]): void;
}

export interface MetricOptions {
  readonly name: string;
  readonly help: string;
  /** Label names, in any order (the text format sorts them). */
  readonly labelNames?: readonly string[];
  /** Called before each scrape: sets values read off some state (a Go GaugeFunc). */
  readonly collect?: () => void;
}

/** `v` as Go's strconv.FormatFloat(v, 'g', -1, 64), with the text format's special values. */
export function formatGoFloat(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const [mantissa, exponentText] = v.toExponential().split('e') as [string, string];
  const exponent = Number(exponentText);
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '');
  const sign = negative ? '-' : '';
  // strconv's 'g' with the shortest digits: %e when the exponent is below -4 or at least 6.
  if (exponent < -4 || exponent >= 6) {
    const frac = digits.length > 1 ? `.${digits.slice(1)}` : '';
    const expSign = exponent < 0 ? '-' : '+';
    const expDigits = String(Math.abs(exponent)).padStart(2, '0');
    return `${sign}${digits[0]}${frac}e${expSign}${expDigits}`;
  }
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`;
  if (digits.length <= exponent + 1) return `${sign}${digits}${'0'.repeat(exponent + 1 - digits.length)}`;
  return `${sign}${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`;
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** The label set of one series: names sorted, values in the same order. */
class LabelSet {
  readonly names: readonly string[];
  readonly order: readonly number[];

  constructor(labelNames: readonly string[]) {
    for (const n of labelNames) {
      if (!LABEL_NAME.test(n) || n.startsWith('__') || n === 'le') throw new Error(`invalid label name ${n}`);
    }
    if (new Set(labelNames).size !== labelNames.length) throw new Error(`duplicate label in ${labelNames.join(',')}`);
    this.names = labelNames;
    this.order = labelNames.map((_, i) => i).sort((a, b) => (labelNames[a]! < labelNames[b]! ? -1 : 1));
  }

  /** `{a="x",b="y"` without the closing brace (a histogram adds `le`), or '' when there are no labels. */
  open(values: readonly string[]): string {
    if (this.order.length === 0) return '';
    return `{${this.order.map((i) => `${this.names[i]}="${escapeLabelValue(values[i]!)}"`).join(',')}`;
  }

  sortKey(values: readonly string[]): string[] {
    return this.order.map((i) => values[i]!);
  }
}

function compareKeys(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < a.length; i++) {
    if (a[i]! < b[i]!) return -1;
    if (a[i]! > b[i]!) return 1;
  }
  return 0;
}

/** What every family shares: name, help, labels and a bounded map of series by label values. */
abstract class Family<S> implements MetricFamily {
  readonly name: string;
  readonly help: string;
  abstract readonly type: MetricType;
  readonly #labels: LabelSet;
  readonly #series = new Map<string, { values: readonly string[]; series: S }>();
  readonly #collect: (() => void) | null;

  constructor(options: MetricOptions) {
    if (!METRIC_NAME.test(options.name)) throw new Error(`invalid metric name ${options.name}`);
    this.name = options.name;
    this.help = options.help;
    this.#labels = new LabelSet(options.labelNames ?? []);
    this.#collect = options.collect ?? null;
  }

  protected abstract create(): S;
  protected abstract write(out: string[], labels: string, series: S): void;

  /** The series of these label values (created at zero on first use), in `labelNames` order. */
  labels(...values: string[]): S {
    if (values.length !== this.#labels.names.length) {
      throw new Error(`${this.name} takes ${this.#labels.names.length} label values, got ${values.length}`);
    }
    const key = values.join('\u0000');
    let entry = this.#series.get(key);
    if (entry === undefined) {
      if (this.#series.size >= SERIES_PER_FAMILY_MAX) throw new Error(`${this.name} has too many series`);
      entry = { values: Object.freeze([...values]), series: this.create() };
      this.#series.set(key, entry);
    }
    return entry.series;
  }

  /** Drops every series (a collect callback that rebuilds a changing label set calls it first). */
  reset(): void {
    this.#series.clear();
  }

  writeSamples(out: string[]): void {
    this.#collect?.();
    const entries = [...this.#series.values()];
    if (entries.length > 1) {
      entries.sort((a, b) => compareKeys(this.#labels.sortKey(a.values), this.#labels.sortKey(b.values)));
    }
    for (const e of entries) this.write(out, this.#labels.open(e.values), e.series);
  }
}

export class CounterSeries {
  value = 0;

  inc(n = 1): void {
    if (!(n >= 0)) throw new RangeError(`a counter cannot decrease (inc ${n})`);
    this.value += n;
  }
}

export class Counter extends Family<CounterSeries> {
  readonly type = MetricType.Counter;

  /** The unlabelled counter's series. */
  inc(n = 1): void {
    this.labels().inc(n);
  }

  protected create(): CounterSeries {
    return new CounterSeries();
  }

  protected write(out: string[], labels: string, s: CounterSeries): void {
    out.push(`${this.name}${labels === '' ? '' : `${labels}}`} ${formatGoFloat(s.value)}`);
  }
}

export class GaugeSeries {
  value = 0;

  set(v: number): void {
    this.value = v;
  }

  inc(n = 1): void {
    this.value += n;
  }

  dec(n = 1): void {
    this.value -= n;
  }
}

export class Gauge extends Family<GaugeSeries> {
  readonly type = MetricType.Gauge;

  /** Sets the unlabelled gauge. */
  set(v: number): void {
    this.labels().set(v);
  }

  protected create(): GaugeSeries {
    return new GaugeSeries();
  }

  protected write(out: string[], labels: string, s: GaugeSeries): void {
    out.push(`${this.name}${labels === '' ? '' : `${labels}}`} ${formatGoFloat(s.value)}`);
  }
}

/** Go's prometheus.ExponentialBuckets(start, factor, count). */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  if (!(start > 0) || !(factor > 1) || !Number.isInteger(count) || count < 1) {
    throw new RangeError(`bad exponential buckets (${start}, ${factor}, ${count})`);
  }
  const out: number[] = [];
  let bound = start;
  for (let i = 0; i < count; i++) {
    out.push(bound);
    bound *= factor;
  }
  return out;
}

export class HistogramSeries {
  readonly bounds: readonly number[];
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(v: number): void {
    if (Number.isNaN(v)) return;
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }

  /** Replaces the state with a snapshot kept elsewhere (cumulative counts, one per bound). */
  setCumulative(cumulative: readonly number[], sum: number, count: number): void {
    if (cumulative.length !== this.bounds.length) throw new RangeError('bucket counts do not match the bounds');
    let previous = 0;
    for (let i = 0; i < cumulative.length; i++) {
      this.counts[i] = cumulative[i]! - previous;
      previous = cumulative[i]!;
    }
    this.counts[cumulative.length] = count - previous;
    this.sum = sum;
    this.count = count;
  }
}

export interface HistogramOptions extends MetricOptions {
  /** Upper bounds, increasing; +Inf is implicit. */
  readonly buckets: readonly number[];
}

export class Histogram extends Family<HistogramSeries> {
  readonly type = MetricType.Histogram;
  readonly buckets: readonly number[];
  readonly #boundText: readonly string[];

  constructor(options: HistogramOptions) {
    super(options);
    for (let i = 1; i < options.buckets.length; i++) {
      if (!(options.buckets[i]! > options.buckets[i - 1]!))
        throw new RangeError(`${options.name}: buckets must increase`);
    }
    this.buckets = Object.freeze([...options.buckets]);
    this.#boundText = this.buckets.map(formatGoFloat);
  }

  /** Observes into the unlabelled histogram. */
  observe(v: number): void {
    this.labels().observe(v);
  }

  protected create(): HistogramSeries {
    return new HistogramSeries(this.buckets);
  }

  protected write(out: string[], labels: string, s: HistogramSeries): void {
    const open = labels === '' ? '{' : `${labels},`;
    let cumulative = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      cumulative += s.counts[i]!;
      out.push(`${this.name}_bucket${open}le="${this.#boundText[i]}"} ${formatGoFloat(cumulative)}`);
    }
    out.push(`${this.name}_bucket${open}le="+Inf"} ${formatGoFloat(s.count)}`);
    const plain = labels === '' ? '' : `${labels}}`;
    out.push(`${this.name}_sum${plain} ${formatGoFloat(s.sum)}`);
    out.push(`${this.name}_count${plain} ${formatGoFloat(s.count)}`);
  }
}

/** The families a /metrics scrape shows. */
export class MetricsRegistry {
  readonly #families = new Map<string, MetricFamily>();
  readonly #collectors: (() => void)[] = [];

  /**
   * Runs `collect` at the start of every scrape, before any family is written: one reading of
   * some state can then set several gauges. A collector that throws leaves the values as they were.
   */
  addCollector(collect: () => void): void {
    this.#collectors.push(collect);
  }

  register<F extends MetricFamily>(family: F): F {
    if (this.#families.has(family.name)) throw new Error(`metric ${family.name} is already registered`);
    this.#families.set(family.name, family);
    return family;
  }

  /** Every family of `other` too (a member's registry over the server's). */
  registerAll(other: MetricsRegistry): void {
    for (const f of other.#families.values()) this.register(f);
    this.#collectors.push(...other.#collectors);
  }

  /** The text exposition of every family with at least one series, families sorted by name. */
  render(): string {
    for (const collect of this.#collectors) {
      try {
        collect();
      } catch {
        // The state could not be read (the member is stopping): the last values stay.
      }
    }
    const names = [...this.#families.keys()].sort();
    const out: string[] = [];
    for (const name of names) {
      const family = this.#families.get(name)!;
      const samples: string[] = [];
      family.writeSamples(samples);
      if (samples.length === 0) continue;
      out.push(`# HELP ${name} ${escapeHelp(family.help)}`, `# TYPE ${name} ${family.type}`, ...samples);
    }
    return out.length === 0 ? '' : `${out.join('\n')}\n`;
  }
}

// ---- The server's metrics (etcd's names, help texts and buckets) ----

/** etcd's buckets for disk latencies: 1 ms to 8.192 s. */
export const DISK_LATENCY_BUCKETS_SECONDS: readonly number[] = Object.freeze(exponentialBuckets(0.001, 2, 14));

/** What the server counts as it runs; the rest of a member's metrics are read at scrape time. */
export class ServerMetrics {
  readonly registry = new MetricsRegistry();
  readonly leaderChanges = this.registry.register(
    new Counter({ name: 'etcd_server_leader_changes_seen_total', help: 'The number of leader changes seen.' }),
  );
  readonly proposalsFailed = this.registry.register(
    new Counter({ name: 'etcd_server_proposals_failed_total', help: 'The total number of failed proposals seen.' }),
  );
  readonly walFsyncSeconds = this.registry.register(
    new Histogram({
      name: 'etcd_disk_wal_fsync_duration_seconds',
      help: 'The latency distributions of fsync called by WAL.',
      buckets: DISK_LATENCY_BUCKETS_SECONDS,
    }),
  );
  readonly backendCommitSeconds = this.registry.register(
    new Histogram({
      name: 'etcd_disk_backend_commit_duration_seconds',
      help: 'The latency distributions of commit called by backend.',
      buckets: DISK_LATENCY_BUCKETS_SECONDS,
    }),
  );

  constructor() {
    // Counters and histograms are shown from the start, at zero, as Go's unlabelled metrics are.
    this.leaderChanges.labels();
    this.proposalsFailed.labels();
    this.walFsyncSeconds.labels();
    this.backendCommitSeconds.labels();
  }

  /** For the WAL's onFsync option. */
  readonly onWalFsync = (durationMs: number): void => this.walFsyncSeconds.observe(durationMs / 1000);
  /** For the backend's onCommit hook. */
  readonly onBackendCommit = (durationMs: number): void => this.backendCommitSeconds.observe(durationMs / 1000);
}
