/** Totals over many schedules, and how they are printed. */
import { formatCoverage, mergeCounts } from './coverage';
import { DEFAULT_CLOCK_SKEW_SECONDS, timeToFreeBoundSeconds } from '../../src/core/lease';
import type { ScheduleResult } from './world';

/** The stated bound (ms) for a lease at the default allowance, with the simulation's schedule and release timeout. */
export function statedBoundMs(leaseSeconds: number): number {
  return (
    timeToFreeBoundSeconds({
      leaseSeconds,
      clockSkewSeconds: DEFAULT_CLOCK_SKEW_SECONDS,
      clockDifferenceSeconds: 2 * DEFAULT_CLOCK_SKEW_SECONDS,
      schedulePeriodSeconds: 60,
      scheduleJitterSeconds: 2,
      releaseSeconds: 5,
    }) * 1000
  );
}

export interface Summary {
  schedules: number;
  steps: number;
  holds: number;
  sweeps: number;
  stuckHolds: number;
  faults: Record<string, number>;
  /** How often each protocol branch ran (coverage.ts). */
  coverage: Record<string, number>;
  /** Time-to-free of crashed holders' locks, by lease (seconds) and kind, in ms. */
  ttf: Record<string, number[]>;
  /** How far below its bound each freeing stayed, the smallest (ms), by kind. */
  minSlackMs: Record<string, number>;
  /** Time-to-free (ms) of crashed holders' locks in undisturbed schedules (no outage burst, no disrupted sweep), by lease. */
  undisturbed: Record<string, number[]>;
  /** The smallest margin below the stated bound (timeToFreeBoundSeconds) among those, by lease (ms; negative: above it). */
  undisturbedMarginMs: Record<string, number>;
  /** All violations and the schedules with any; only the first MAX_VIOLATIONS_KEPT are kept in `violations`. */
  violationCount: number;
  violatingSchedules: number;
  violations: Array<{ seed: number; property: string; at: number; message: string }>;
}

export function emptySummary(): Summary {
  return {
    schedules: 0,
    steps: 0,
    holds: 0,
    sweeps: 0,
    stuckHolds: 0,
    faults: {},
    coverage: {},
    ttf: {},
    minSlackMs: {},
    undisturbed: {},
    undisturbedMarginMs: {},
    violationCount: 0,
    violatingSchedules: 0,
    violations: [],
  };
}

const MAX_VIOLATIONS_KEPT = 50;

export function summarize(summary: Summary, result: ScheduleResult): void {
  summary.schedules += 1;
  summary.steps += result.steps;
  summary.holds += result.holds;
  summary.sweeps += result.sweeps;
  summary.stuckHolds += result.stuckHolds;
  for (const [kind, n] of result.faults.counts) summary.faults[kind] = (summary.faults[kind] ?? 0) + n;
  mergeCounts(summary.coverage, result.coverage);
  for (const sample of result.liveness) {
    const kind = sample.byExpiry
      ? 'expiry (never reached the ledger)'
      : sample.extended
        ? 'sweep, extended'
        : 'sweep';
    const key = `${kind}|${sample.byExpiry ? '-' : sample.leaseSeconds}`;
    (summary.ttf[key] ??= []).push(sample.ttfMs);
    summary.minSlackMs[kind] = Math.min(summary.minSlackMs[kind] ?? Infinity, sample.boundMs - sample.ttfMs);
    if (sample.undisturbed) {
      const lease = String(sample.leaseSeconds);
      (summary.undisturbed[lease] ??= []).push(sample.ttfMs);
      summary.undisturbedMarginMs[lease] = Math.min(
        summary.undisturbedMarginMs[lease] ?? Infinity,
        sample.statedBoundMs - sample.ttfMs,
      );
    }
  }
  summary.violationCount += result.violations.length;
  if (result.violations.length > 0) summary.violatingSchedules += 1;
  for (const v of result.violations) {
    if (summary.violations.length < MAX_VIOLATIONS_KEPT) summary.violations.push({ seed: result.seed, ...v });
  }
}

export function mergeSummary(a: Summary, b: Summary): Summary {
  const out = emptySummary();
  for (const s of [a, b]) {
    out.schedules += s.schedules;
    out.steps += s.steps;
    out.holds += s.holds;
    out.sweeps += s.sweeps;
    out.stuckHolds += s.stuckHolds;
    for (const [k, n] of Object.entries(s.faults)) out.faults[k] = (out.faults[k] ?? 0) + n;
    mergeCounts(out.coverage, Object.entries(s.coverage));
    for (const [k, xs] of Object.entries(s.ttf)) (out.ttf[k] ??= []).push(...xs);
    for (const [k, n] of Object.entries(s.minSlackMs))
      out.minSlackMs[k] = Math.min(out.minSlackMs[k] ?? Infinity, n);
    for (const [k, xs] of Object.entries(s.undisturbed)) (out.undisturbed[k] ??= []).push(...xs);
    for (const [k, n] of Object.entries(s.undisturbedMarginMs))
      out.undisturbedMarginMs[k] = Math.min(out.undisturbedMarginMs[k] ?? Infinity, n);
    out.violationCount += s.violationCount;
    out.violatingSchedules += s.violatingSchedules;
    out.violations.push(...s.violations);
  }
  out.violations = out.violations.slice(0, MAX_VIOLATIONS_KEPT);
  return out;
}

export function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export function formatSummary(summary: Summary, seconds: number, variant?: string): string {
  const lines: string[] = [];
  lines.push(
    `schedules: ${summary.schedules} in ${seconds.toFixed(1)} s (${(summary.schedules / seconds).toFixed(0)}/s); ` +
      `${summary.steps} events, ${summary.holds} holds, ${summary.sweeps} sweeps`,
  );
  lines.push('faults injected:');
  for (const [kind, n] of Object.entries(summary.faults).sort()) lines.push(`  ${kind.padEnd(26)} ${n}`);
  lines.push("time-to-free of crashed holders' locks (from the last heartbeat; expiry: from the crash):");
  lines.push('  freed by                             lease      n      p50      p99      max');
  for (const [key, xs] of Object.entries(summary.ttf).sort()) {
    const [kind, lease] = key.split('|') as [string, string];
    xs.sort((x, y) => x - y);
    lines.push(
      `  ${kind.padEnd(36)} ${lease.padStart(5)} ${String(xs.length).padStart(6)} ${s(quantile(xs, 0.5)).padStart(8)} ${s(quantile(xs, 0.99)).padStart(8)} ${s(xs[xs.length - 1] ?? NaN).padStart(8)}`,
    );
  }
  for (const [kind, slack] of Object.entries(summary.minSlackMs).sort()) {
    lines.push(`  smallest margin below the bound, ${kind}: ${s(slack)}`);
  }
  lines.push(
    '  bound (sweep): freed by max(heartbeat reading + lease + skew allowance + (holder skew - sweep skew), the time that',
    '  write landed) + period 60 s + start jitter 2 s + release 5 s; + (claim lease 60 s + skew allowance + period 60 s +',
    '  jitter 2 s) per disrupted sweep meanwhile ("extended": crashed, killed, late or faulted). expiry: 600 s after the',
    '  create or renew, shown from the crash (a create still in flight when its holder crashed lands later)',
  );
  lines.push(
    'undisturbed schedules (no outage burst, no sweep disrupted while the lock waited) against the stated bound,',
    "  timeToFreeBoundSeconds() for the lease and the schedule's allowance (at the default 10 s allowance: shown):",
    '  lease      n      p50      p99      max  bound(10 s)  smallest margin',
  );
  for (const [lease, xs] of Object.entries(summary.undisturbed).sort((a, b) => Number(a[0]) - Number(b[0]))) {
    xs.sort((x, y) => x - y);
    lines.push(
      `  ${lease.padStart(5)} ${String(xs.length).padStart(6)} ${s(quantile(xs, 0.5)).padStart(8)} ${s(quantile(xs, 0.99)).padStart(8)} ${s(xs[xs.length - 1] ?? NaN).padStart(8)} ${s(statedBoundMs(Number(lease))).padStart(12)} ${s(summary.undisturbedMarginMs[lease] ?? NaN).padStart(16)}`,
    );
  }

  lines.push(...formatCoverage(summary.coverage));
  if (summary.stuckHolds > 0)
    lines.push(`hold() calls that never settled (a ledger call never answered): ${summary.stuckHolds}`);
  lines.push(
    `violations: ${summary.violationCount}` +
      (summary.violationCount > 0
        ? ` in ${summary.violatingSchedules} schedule(s)${summary.violationCount > summary.violations.length ? `; the first ${summary.violations.length}:` : ':'}`
        : ''),
  );
  for (const v of summary.violations) {
    lines.push(`  seed ${v.seed}: ${v.property} at ${s(v.at - 1_750_000_000_000)}: ${v.message}`);
    lines.push(
      `    replay: npm run simulate -- --schedules 1 --seed ${v.seed} --verbose${variant ? ` --variant ${variant}` : ''}`,
    );
  }
  return lines.join('\n');
}
