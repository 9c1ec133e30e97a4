/** The benchmark's rows, the machine it ran on, and the tables it prints (Markdown, as the README shows them). */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, platform, arch, totalmem } from 'node:os';
import type { Part, VariantResult } from './bundle';

export interface Row {
  /** Stable ID, e.g. "1.calls" (the smoke test checks that every one of ROW_IDS is produced). */
  id: string;
  /** The item number: 1–7 the release path, 10.<goal> the ledger at scale, 11 the ledger's cost. */
  item: number;
  what: string;
  /** The goal as text; "—" when the item only reports. */
  goal: string;
  measured: string;
  /** The figure the goal is about (a ratio, ms, KB, MB, a count). */
  value: number;
  /** Whether the goal is met; absent when there is no goal. */
  ok?: boolean;
}

/** Every row a run produces, in table order. */
export const ROW_IDS = [
  '1.calls',
  '1.floor',
  '1.whole',
  '1.whole-warm',
  '1.cpu',
  '2.overhead',
  '3.connections',
  '3.connections-whole',
  '3.connections-warm',
  '4.zip',
  '4.load',
  '4.cold',
  '4.cold-ledger',
  '5.secret-cold',
  '5.secret-warm',
  '5.secret-expiry',
  '6.memory',
  '6.memory-size',
  '7.sweep-many',
  '7.sweep-few',
  // The ledger at scale: each goal, the new ledger next to the baseline (today's byStatus ledger) in the same run.
  '10.1-holders',
  '10.1-load',
  '10.2-heartbeat',
  '10.2-sweep-read',
  '10.3-sparse',
  '10.4-lifecycle',
  '10.4-sqs',
  '10.4-month',
  '10.5-cpu',
  '10.5-variants',
  '10.5-rss',
  '10.6-sweep-many',
  '10.6-sweep-few',
  // The ledger's cost: the release function with its DynamoDB client next to the AWS SDK client, same run.
  'ledger.cpu',
  'ledger.load',
  'ledger.cold',
  'ledger.rss',
  'ledger.sqs-batch',
  'ledger.direct',
  'ledger.cost',
  'ledger.clients',
] as const;

export type RowId = (typeof ROW_IDS)[number];

export interface Machine {
  cpu: string;
  cores: number;
  node: string;
  os: string;
  memoryGb: number;
  /** 1-minute load average when the run started and ended (other work on the machine skews timings). */
  loadAverage: { start: number; end?: number };
  /**
   * A fixed CPU loop (CALIBRATION_LOOP: 100,000 chained SHA-256 of 32 bytes) in ms, median of 5 fresh processes,
   * at the start and the end of the run: figures from two machines compare as ratios to it.
   */
  calibrationMs?: { start: number; end?: number };
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
    memoryGb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    loadAverage: { start: round(loadavg()[0] ?? 0, 2) },
  };
}

export function endLoad(m: Machine): void {
  m.loadAverage.end = round(loadavg()[0] ?? 0, 2);
}

export function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export const ms = (v: number): string => `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`;
export const kb = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KB`;

export interface Results {
  machine: Machine;
  mode: 'full' | 'quick';
  startedAt: string;
  durationS: number;
  parameters: Record<string, unknown>;
  rows: Row[];
  alternatives: VariantResult[];
  composition: { totalBytes: number; packages: Part[]; files: Part[] };
  notes: string[];
  /** The ledger-scale load model and cost sections (Markdown), when its items ran. */
  scaleSections?: string;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function table(header: string[], lines: string[][]): string {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...lines.map((l) => `| ${l.map(cell).join(' | ')} |`),
  ].join('\n');
}

export function machineLine(r: Results): string {
  const m = r.machine;
  const load = `load average ${m.loadAverage.start}${m.loadAverage.end === undefined ? '' : ` → ${m.loadAverage.end}`}`;
  const cal = m.calibrationMs
    ? `; CPU calibration ${m.calibrationMs.start} ms${m.calibrationMs.end === undefined ? '' : ` → ${m.calibrationMs.end} ms`} (100,000 chained SHA-256, median of 5 fresh processes)`
    : '';
  return `${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB, ${m.os}, Node ${m.node}; ${load}${cal}; ${r.mode} run of ${r.durationS} s, ${r.startedAt}`;
}

/** The goals table: what was measured, its goal, the measurement, met or not. */
export function goalsTable(r: Results, which: (row: Row) => boolean = () => true): string {
  return table(
    ['#', 'measurement', 'goal', 'measured', 'met'],
    r.rows
      .filter(which)
      .map((row) => [
        String(row.item),
        row.what,
        row.goal,
        row.measured,
        row.ok === undefined ? '—' : row.ok ? 'yes' : '**no**',
      ]),
  );
}

export function alternativesTable(r: Results): string {
  const base = r.alternatives[0];
  const delta = (v: number | undefined, b: number | undefined, digits: number) =>
    v === undefined
      ? '—'
      : `${v.toFixed(digits)}${b === undefined || v === b ? '' : ` (${v > b ? '+' : ''}${(v - b).toFixed(digits)})`}`;
  return table(
    ['build', 'zip KB', 'raw KB', 'load ms', 'load + 1st release ms', 'what it shows'],
    r.alternatives.map((v) => [
      v.name,
      delta(v.zipKb, base?.zipKb, 1),
      v.rawKb.toFixed(0),
      delta(v.loadMs, base?.loadMs, 0),
      delta(v.firstMs, base?.firstMs, 0),
      v.note,
    ]),
  );
}

export function compositionTable(r: Results, top = 12): string {
  return table(
    ['package', 'bytes in bundle', 'share'],
    r.composition.packages
      .slice(0, top)
      .map((p) => [p.name, String(p.bytes), `${(p.share * 100).toFixed(1)} %`]),
  );
}

const isScaleRow = (row: Row) => row.id.startsWith('10.');
const isCostRow = (row: Row) => row.id.startsWith('ledger.');

/** The run as Markdown: the machine, then one table per part, each goal next to its baseline of the same run. */
export function markdown(r: Results, scale = ''): string {
  const section = (title: string, intro: string, which: (row: Row) => boolean, after: string[] = []) =>
    r.rows.some(which) ? [`### ${title}`, '', intro, '', goalsTable(r, which), '', ...after] : [];
  return [
    `Machine: ${machineLine(r)}`,
    '',
    ...section(
      "The ledger's cost on the release path (11)",
      'The packaged release function, its ledger calls signed and sent over undici (src/ledger/dynamo-http.ts), first; after "—" the baseline: the same function with the ledger through the AWS SDK v3 client, measured the same way in the same run.',
      isCostRow,
    ),
    ...section(
      'The release path (items 1–7)',
      'The packaged release function and its parts against the KooDrive emulator (a process of its own), dynalite and the local Secrets Manager.',
      (row) => !isScaleRow(row) && !isCostRow(row),
    ),
    ...section(
      'The ledger at scale (10.x)',
      'The current ledger (sparse `openLocks` index) first, after "—" the baseline, the ledger before it (`byStatus` index), measured the same way in the same run.',
      isScaleRow,
      scale ? [scale, ''] : [],
    ),
    '### Cold start alternatives',
    '',
    'Zip sizes estimated as serverless-esbuild writes them; times are medians of fresh processes, run interleaved; differences against the first line. The last lines leave parts out (cumulatively from "without the AWS SDK") to show what the load time is made of:',
    '',
    alternativesTable(r),
    '',
    `What the configured bundle is made of (${r.composition.totalBytes} bytes before zipping):`,
    '',
    compositionTable(r),
    ...(r.notes.length ? ['', ...r.notes.map((n) => `- ${n}`)] : []),
  ].join('\n');
}
