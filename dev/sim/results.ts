/**
 * The simulation's figures as a results file (`npm run simulate -- … --results sim/results.json`) and as the
 * markdown block docs/protocol.md shows (`npm run simulate:docs`, dev/sim/docs.ts). Only figures of the run: no
 * wall-clock time, so the same schedules give the same file.
 */
import { REQUIRED_BRANCHES, missingBranches } from './coverage';
import { quantile, statedBoundMs, type Summary } from './summary';

export interface TtfRow {
  leaseSeconds: number;
  locks: number;
  p50Seconds: number;
  p99Seconds: number;
  maxSeconds: number;
}

export interface SimResults {
  command: string;
  schedules: number;
  seed: number;
  holds: number;
  sweeps: number;
  violations: number;
  violatingSchedules: number;
  coverage: { listed: number; ran: number; neverRan: string[] };
  /** Crashed holders' locks freed by a sweep with no sweep disrupted while they waited (any schedule). */
  ttf: TtfRow[];
  /** The same in undisturbed schedules (no outage burst), against the stated bound. */
  undisturbed: Array<TtfRow & { statedBoundSeconds: number; smallestMarginSeconds: number }>;
}

const sec = (ms: number) => Math.round(ms / 100) / 10;

function row(leaseSeconds: number, xs: number[]): TtfRow {
  const sorted = [...xs].sort((a, b) => a - b);
  return {
    leaseSeconds,
    locks: sorted.length,
    p50Seconds: sec(quantile(sorted, 0.5)),
    p99Seconds: sec(quantile(sorted, 0.99)),
    maxSeconds: sec(sorted[sorted.length - 1] ?? NaN),
  };
}

export function toResults(summary: Summary, seed: number): SimResults {
  const listed = Object.keys(REQUIRED_BRANCHES).length;
  const neverRan = missingBranches(summary.coverage);
  const byLease = (key: string) => Number(key.split('|')[1]);
  return {
    command: `npm run simulate -- --schedules ${summary.schedules} --seed ${seed}`,
    schedules: summary.schedules,
    seed,
    holds: summary.holds,
    sweeps: summary.sweeps,
    violations: summary.violationCount,
    violatingSchedules: summary.violatingSchedules,
    coverage: { listed, ran: listed - neverRan.length, neverRan },
    ttf: Object.entries(summary.ttf)
      .filter(([key]) => key.startsWith('sweep|'))
      .map(([key, xs]) => row(byLease(key), xs))
      .sort((a, b) => b.leaseSeconds - a.leaseSeconds),
    undisturbed: Object.entries(summary.undisturbed)
      .map(([lease, xs]) => ({
        ...row(Number(lease), xs),
        statedBoundSeconds: statedBoundMs(Number(lease)) / 1000,
        smallestMarginSeconds: sec(summary.undisturbedMarginMs[lease] ?? NaN),
      }))
      .sort((a, b) => b.leaseSeconds - a.leaseSeconds),
  };
}

const n = (x: number) => x.toLocaleString('en-US');
const s = (x: number) => `${x.toFixed(1)} s`;

/** The block docs/protocol.md shows for a results file. */
export function markdown(r: SimResults): string {
  const lines = [
    `${n(r.schedules)} schedules (\`${r.command}\`): ${n(r.violations)} violations` +
      (r.violations > 0 ? ` in ${n(r.violatingSchedules)} schedules` : '') +
      `; ${n(r.holds)} holds, ${n(r.sweeps)} sweeps; ` +
      (r.coverage.neverRan.length === 0
        ? `all ${r.coverage.listed} listed protocol branches ran.`
        : `${r.coverage.neverRan.length} of ${r.coverage.listed} listed protocol branches never ran (${r.coverage.neverRan.join(', ')}).`),
    '',
    "Time from a crashed holder's last heartbeat to the sweep's `DELETE`, when no sweep in between was disturbed:",
    '',
    '| lease | locks | p50 | p99 | max |',
    '| ----- | ----- | --- | --- | --- |',
    ...r.ttf.map(
      (t) =>
        `| ${t.leaseSeconds} s | ${n(t.locks)} | ${s(t.p50Seconds)} | ${s(t.p99Seconds)} | ${s(t.maxSeconds)} |`,
    ),
    '',
    'The same in undisturbed schedules (no outage burst: renew, KooDrive, `DELETE` or ledger outages, renew flaps,',
    'late renewals), against the stated bound `timeToFreeBoundSeconds()` (shown at the default 10 s allowance; each',
    "lock is judged by its schedule's allowance, and a lock above it fails the run):",
    '',
    '| lease | locks | p50 | p99 | max | stated bound | smallest margin |',
    '| ----- | ----- | --- | --- | --- | ------------ | --------------- |',
    ...r.undisturbed.map(
      (t) =>
        `| ${t.leaseSeconds} s | ${n(t.locks)} | ${s(t.p50Seconds)} | ${s(t.p99Seconds)} | ${s(t.maxSeconds)} | ${s(t.statedBoundSeconds)} | ${s(t.smallestMarginSeconds)} |`,
    ),
  ];
  return lines.join('\n');
}
