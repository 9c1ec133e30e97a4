/**
 * The benchmark's results: rows, the runs they came from (machine, load average, CPU calibration), and the tables
 * the docs show (Markdown). A results file can gather scenarios from several runs: each table names its run.
 */
import { execFileSync } from 'node:child_process';
import { arch, cpus, loadavg, platform, totalmem } from 'node:os';
import type { Part, VariantResult } from './build-variants';

/** The scenarios in table order, each named for what it measures: its title and what its table compares. */
export const SCENARIOS = {
  'ledger-cost': {
    title: "The ledger's cost on the release path",
    intro:
      'The packaged release function, its ledger calls signed and sent over undici (src/ledger/dynamo-http.ts), first; after "—" the baseline: the same function with the ledger through the AWS SDK v3 client, measured the same way in the same run.',
  },
  'dynamodb-clients': {
    title: 'The DynamoDB client candidates alone',
    intro:
      'Each candidate bundled alone (esbuild, minified CJS), loaded in fresh processes and driven with the outcome write against dynalite.',
  },
  'release-latency': {
    title: 'Release latency and connection reuse',
    intro:
      'The engine with the KooDrive client as wired, and the packaged release function, against the KooDrive emulator (a process of its own) with a fixed latency L, dynalite and the local Secrets Manager.',
  },
  'client-overhead': {
    title: 'Client overhead',
    intro:
      'The engine with the KooDrive client against the common way (fetch and Promise.all), in one worker.',
  },
  'secret-cache': {
    title: 'Secret cache',
    intro: 'GetSecretValue calls the local Secrets Manager answered while the packaged function ran.',
  },
  memory: { title: 'Memory', intro: 'The packaged release function in a fresh process.' },
  'cold-start': {
    title: 'Cold start',
    intro: 'The release function as packaged, loaded and invoked in fresh plain `node` processes.',
  },
  'ledger-scale': {
    title: 'The ledger at scale',
    intro:
      'Holders through LockHolder on a virtual clock and the sweep over a large ledger, on dynalite behind the capacity model (dev/bench/capacity.ts), which prices every request in DynamoDB units per partition key value.',
  },
  'find-by-user': {
    title: 'Find by user',
    intro:
      'The release function (src/, in a worker) answering `{"userId", "moduleCode": "101"}` with many other users\' open items in the ledger; the baseline is what finding the lock took before: a Scan of the table filtered by userId.',
  },
  'answer-size': {
    title: 'Answer size under hostile payloads',
    intro:
      "The release function's answer and log lines (src/, in a worker, no ledger) for oversized direct invokes.",
  },
} as const;
export type ScenarioName = keyof typeof SCENARIOS;

export interface Row {
  /** Stable ID "<scenario>.<what>" (the smoke test checks that a quick run produces every one of ROW_IDS). */
  id: string;
  scenario: ScenarioName;
  what: string;
  /** The goal as text; "—" when the row only reports. */
  goal: string;
  measured: string;
  /** The figure the goal is about (a ratio, ms, KB, MB, a count). */
  value: number;
  /** Whether the goal is met; absent when there is no goal. */
  ok?: boolean;
}

/** Every row a run of every scenario produces, in table order. */
export const ROW_IDS = [
  'ledger-cost.cpu',
  'ledger-cost.load',
  'ledger-cost.cold',
  'ledger-cost.rss',
  'ledger-cost.sqs-batch',
  'ledger-cost.direct',
  'ledger-cost.cost',
  'dynamodb-clients.update',
  'release-latency.calls',
  'release-latency.floor',
  'release-latency.whole',
  'release-latency.whole-warm',
  'release-latency.cpu',
  'release-latency.connections',
  'release-latency.connections-whole',
  'release-latency.connections-warm',
  'client-overhead.per-core',
  'secret-cache.cold',
  'secret-cache.warm',
  'secret-cache.expiry',
  'memory.peak-rss',
  'memory.memory-size',
  'cold-start.zip',
  'cold-start.load',
  'cold-start.first',
  'cold-start.first-ledger',
  'ledger-scale.holders',
  'ledger-scale.heartbeat',
  'ledger-scale.sparse-index',
  'ledger-scale.lifecycle',
  'ledger-scale.load-model',
  'ledger-scale.sweep-many',
  'ledger-scale.sweep-few',
  'ledger-scale.sweep-read',
  'ledger-scale.sweep-month',
  'find-by-user.first',
  'find-by-user.warm',
  'find-by-user.release',
  'answer-size.long-lock-ids',
  'answer-size.long-user-id',
] as const;

export interface Machine {
  cpu: string;
  cores: number;
  node: string;
  os: string;
  memoryGb: number;
  /** 1-minute load average when the run started and ended (other work on the machine skews timings). */
  loadAverage: { start: number; end?: number };
  /**
   * CALIBRATION_LOOP (100,000 chained SHA-256 of 32 bytes) in ms, median of 5 fresh processes, at the start and
   * the end of the run: figures from two machines compare as ratios to it.
   */
  calibrationMs: { start: number; end?: number };
}

export interface Run {
  /** When it started (ISO): the run's name in the tables. */
  startedAt: string;
  mode: 'full' | 'quick';
  machine: Machine;
  durationS: number;
  scenarios: ScenarioName[];
  parameters: Record<string, unknown>;
}

export interface Results {
  /** The runs whose figures the file holds, oldest first. */
  runs: Run[];
  /** Per scenario: the run its rows came from, extra tables (Markdown) and notes. */
  scenarios: Partial<Record<ScenarioName, { run: string; markdown?: string; notes: string[] }>>;
  rows: Row[];
  alternatives?: VariantResult[];
  composition?: { totalBytes: number; packages: Part[]; files: Part[] };
  /** The whole file as Markdown (what the docs' generated block holds). */
  markdown?: string;
}

/** The calibration loop, run by a fresh `node -e`: prints the ms it took. */
export const CALIBRATION_LOOP =
  "const c=require('node:crypto');const t=performance.now();let h=Buffer.alloc(32);" +
  "for(let i=0;i<100000;i++)h=c.createHash('sha256').update(h).digest();process.stdout.write(String(performance.now()-t))";

/** Median of 5 fresh processes running CALIBRATION_LOOP. */
export function calibrate(): number {
  const runs = Array.from({ length: 5 }, () =>
    Number(execFileSync(process.execPath, ['-e', CALIBRATION_LOOP], { encoding: 'utf8' })),
  ).sort((a, b) => a - b);
  return round(runs[2] ?? NaN, 1);
}

export function machine(): Machine {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    node: process.version,
    os: `${platform()} ${arch()}`,
    memoryGb: round(totalmem() / 2 ** 30, 1),
    loadAverage: { start: round(loadavg()[0] ?? 0, 2) },
    calibrationMs: { start: calibrate() },
  };
}

export function endMachine(m: Machine): void {
  m.loadAverage.end = round(loadavg()[0] ?? 0, 2);
  m.calibrationMs.end = calibrate();
}

export function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export const ms = (v: number): string => `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`;
export const kb = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KB`;
export const median = (values: readonly number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

/**
 * The file after a run: the scenarios it ran replace theirs, the others stay as the earlier runs left them (a run
 * of another mode, quick or full, starts the file afresh). Rows are kept in ROW_IDS order.
 */
export function merge(before: Results | undefined, run: Run, fresh: Omit<Results, 'runs'>): Results {
  const keep = before?.runs.every((r) => r.mode === run.mode) ? before : undefined;
  const ran = new Set<string>(run.scenarios);
  const scenarios = { ...keep?.scenarios, ...fresh.scenarios };
  const used = new Set(Object.values(scenarios).map((s) => s.run));
  const order = (id: string) => (ROW_IDS as readonly string[]).indexOf(id);
  const coldStart = ran.has('cold-start') ? fresh : keep;
  return {
    runs: [...(keep?.runs ?? []).filter((r) => r.startedAt !== run.startedAt), run].filter((r) =>
      used.has(r.startedAt),
    ),
    scenarios,
    rows: [...(keep?.rows ?? []).filter((r) => !ran.has(r.scenario)), ...fresh.rows].sort(
      (a, b) => order(a.id) - order(b.id),
    ),
    ...(coldStart?.alternatives ? { alternatives: coldStart.alternatives } : {}),
    ...(coldStart?.composition ? { composition: coldStart.composition } : {}),
  };
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function table(header: string[], lines: string[][]): string {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...lines.map((l) => `| ${l.map(cell).join(' | ')} |`),
  ].join('\n');
}

export function runLine(r: Run): string {
  const m = r.machine;
  const end = (v: number | undefined, unit = '') => (v === undefined ? '' : ` → ${v}${unit}`);
  // Another load on the machine when the run started (over half its cores busy) makes its timings pessimistic.
  const busy = m.loadAverage.start > 0.5 * m.cores ? ' (busy at the start: timings pessimistic)' : '';
  return `${r.startedAt}, ${r.mode} run of ${r.durationS} s (${r.scenarios.join(', ')}): ${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB, ${m.os}, Node ${m.node}; load average ${m.loadAverage.start}${end(m.loadAverage.end)}${busy}; CPU calibration ${m.calibrationMs.start} ms${end(m.calibrationMs.end, ' ms')}`;
}

function alternativesTable(list: VariantResult[]): string {
  const base = list[0];
  const delta = (v: number | undefined, b: number | undefined, digits: number) =>
    v === undefined
      ? '—'
      : `${v.toFixed(digits)}${b === undefined || v === b ? '' : ` (${v > b ? '+' : ''}${(v - b).toFixed(digits)})`}`;
  return table(
    ['build', 'zip KB', 'raw KB', 'load ms', 'load + 1st release ms', 'what it shows'],
    list.map((v) => [
      v.name,
      delta(v.zipKb, base?.zipKb, 1),
      v.rawKb.toFixed(0),
      delta(v.loadMs, base?.loadMs, 0),
      delta(v.firstMs, base?.firstMs, 0),
      v.note,
    ]),
  );
}

/** The file as Markdown: the runs, then one table per scenario (naming its run), with its extra tables. */
export function markdown(r: Results): string {
  const lines = [
    'Runs (CPU calibration: 100,000 chained SHA-256 of 32 bytes, median of 5 fresh processes, at the start → the end; compare figures within a run, and across machines as ratios to the calibration):',
    '',
    ...r.runs.map((run) => `- ${runLine(run)}`),
  ];
  for (const [name, meta] of Object.entries(SCENARIOS) as Array<
    [ScenarioName, (typeof SCENARIOS)[ScenarioName]]
  >) {
    const s = r.scenarios[name];
    if (!s) continue;
    const rows = r.rows.filter((row) => row.scenario === name);
    lines.push('', `### ${meta.title} (\`${name}\`)`, '', `${meta.intro} Run ${s.run}.`, '');
    lines.push(
      table(
        ['row', 'measurement', 'goal', 'measured', 'met'],
        rows.map((row) => [
          row.id.slice(name.length + 1),
          row.what,
          row.goal,
          row.measured,
          row.ok === undefined ? '—' : row.ok ? 'yes' : '**no**',
        ]),
      ),
    );
    if (name === 'cold-start' && r.alternatives && r.composition) {
      lines.push(
        '',
        'Alternative builds: zip sizes estimated as serverless-esbuild writes them; times are medians of fresh processes, run interleaved; differences against the first line. The last lines leave parts out (cumulatively from "without the AWS SDK") to show what the load time is made of:',
        '',
        alternativesTable(r.alternatives),
        '',
        `What the configured bundle is made of (${r.composition.totalBytes} bytes before zipping):`,
        '',
        table(
          ['package', 'bytes in bundle', 'share'],
          r.composition.packages
            .slice(0, 12)
            .map((p) => [p.name, String(p.bytes), `${(p.share * 100).toFixed(1)} %`]),
        ),
      );
    }
    if (s.markdown) lines.push('', s.markdown);
    if (s.notes.length) lines.push('', ...s.notes.map((n) => `- ${n}`));
  }
  return lines.join('\n');
}
