/**
 * The sweep use case: read the ledger's open items, judge each by its lease (lease.ts), claim the stale and
 * failed ones, release them through the release engine, close the failed ones whose KooDrive lock has certainly
 * expired, and report. Pure: the ledger, KooDrive, time and randomness come in as ports.
 */
import { mapConcurrently, releaseLocks, type EngineDeps, type EngineOptions } from './engine';
import {
  judge,
  type LeasePolicy,
  type LedgerItem,
  type LedgerStatus,
  type SweepLedger,
  type SweepVerdict,
} from './lease';
import type { LockError, LockResult, ReleaseReport, ReportSummary } from './model';
import { preview, toEntry, type Entry } from './requests';

export type { LedgerItem, LedgerStatus, SweepLedger } from './lease';

/** One sweep run: what the event asked for (sweep-event.ts) and the lease policy of the environment. */
export interface SweepInput extends LeasePolicy {
  dryRun: boolean;
  /** At most this many candidates (to release or to close) per run. */
  limit: number;
}

export interface SweepDeps {
  ledger: SweepLedger;
  /** The engine's ports; the recorder is the ledger's claim recorder. `onResult` hears every decision. */
  engine: Omit<EngineDeps, 'recorder'>;
  options: EngineOptions;
  /** Told of each item closed as EXPIRED (a decision without a KooDrive call, so without a LockResult). */
  onClosed?: (candidate: SweepCandidate) => void;
}

export interface SweepCandidate {
  lockId: string;
  userId: string;
  status: LedgerStatus;
  heartbeatAt: number;
  /** Why it qualifies, e.g. "heartbeat 191 s old (lease 120 s + skew 10 s)". */
  reason: string;
  /** release: claimed and released through KooDrive; close: closed as EXPIRED without a KooDrive call. */
  action: 'release' | 'close';
  /** Set when this run left it alone: someone wrote the item after the sweep read it. */
  skipped?: string;
  /** Set when this run closed it as EXPIRED. */
  closed?: boolean;
}

export interface SweepSummary extends ReportSummary {
  /** Candidates left alone because someone wrote them after the read (see SweepCandidate.skipped). */
  skipped: number;
  /** RELEASE_FAILED items closed as EXPIRED: their KooDrive lock has certainly expired. */
  closedExpired: number;
  /** Dry run only: the candidates a run would close as EXPIRED. */
  wouldClose?: number;
}

/**
 * The release report (README, "Requests and answers") plus the candidates. Without a dry run,
 * requested = released + alreadyReleased + failed + skipped + closedExpired; in a dry run,
 * requested = wouldRelease + wouldClose + failed (unusable IDs). Skipped and closed candidates have no result.
 */
export interface SweepReport extends ReleaseReport {
  summary: SweepSummary;
  candidates: SweepCandidate[];
}

/** A claim's lease is the sweep's remaining Lambda time, and never shorter than this. */
export const MIN_CLAIM_LEASE_SECONDS = 60;

const LOST_CLAIM = 'its holder heart-beat, or a release or another sweep wrote it, after the read';
const LOST_CLOSE = 'someone wrote it after the read';

interface Found {
  item: LedgerItem;
  verdict: Exclude<SweepVerdict, { action: 'leave' }>;
}

/**
 * One sweep: the open items read and judged (up to `limit` candidates), then, unless a dry run, each release
 * candidate claimed (a write conditional on the version read) and the claimed ones released through the engine
 * with their outcomes recorded, and each certainly-expired failure closed. A lost race is `skipped`; a candidate
 * not claimed for lack of time is `failed` with kind `deadline`, and stays as it was for the next run. Every
 * decision reaches `onResult` (or `onClosed`).
 */
export async function sweep(input: SweepInput, deps: SweepDeps): Promise<SweepReport> {
  const { clock, remainingMs } = deps.engine;
  const startedAt = clock.now();
  const claimReserveMs =
    deps.options.attemptTimeoutMs + deps.options.safetyMarginMs + 2 * deps.options.recordReserveMs;
  const found = await findCandidates(
    deps.ledger,
    input,
    () => clock.now(),
    () => remainingMs() >= claimReserveMs,
  );
  // IDs written by workers are checked like any request before they can reach an HTTP header.
  const entries = found.map(({ item }) => toEntry('ledger item', item.lockId, item.userId));
  const candidates = found.map(({ item, verdict }, i) => describe(item, verdict, entries[i] as Entry));
  const results = new Array<LockResult | undefined>(found.length);

  if (input.dryRun) {
    found.forEach(({ verdict }, i) => {
      const entry = entries[i] as Entry;
      if (verdict.action === 'close') return;
      results[i] = entry.ok ? { ...entry.lock, outcome: 'wouldRelease', attempts: 0 } : invalid(entry);
    });
    return report(candidates, results, clock.now() - startedAt, true);
  }

  const decide = (i: number, result: LockResult): undefined => {
    results[i] = result;
    deps.engine.onResult?.(result);
    return undefined;
  };
  const closeReserveMs = deps.options.safetyMarginMs + deps.options.recordReserveMs;
  const claims = await mapConcurrently(
    found,
    deps.options.concurrency,
    async ({ item, verdict }, i): Promise<LedgerItem | undefined> => {
      const entry = entries[i] as Entry;
      const candidate = candidates[i] as SweepCandidate;
      const failure = (kind: LockError['kind'], message: string): LockResult => ({
        ...(entry.ok ? entry.lock : { lockId: entry.lockId, userId: entry.userId }),
        outcome: 'failed',
        attempts: 0,
        error: { kind, message },
      });
      if (verdict.action === 'close') {
        if (remainingMs() < closeReserveMs) {
          return decide(
            i,
            failure('deadline', 'not closed: too little time left before the Lambda deadline'),
          );
        }
        try {
          if (await deps.ledger.closeExpired(item)) {
            candidate.closed = true;
            deps.onClosed?.(candidate);
          } else {
            candidate.skipped = LOST_CLOSE;
          }
        } catch (error) {
          decide(i, failure('retryable', `could not close it in the ledger: ${messageOf(error)}`));
        }
        return undefined;
      }
      if (!entry.ok) return decide(i, invalid(entry));
      if (remainingMs() < claimReserveMs) {
        return decide(i, failure('deadline', 'not claimed: too little time left before the Lambda deadline'));
      }
      try {
        const leaseSeconds = Math.max(MIN_CLAIM_LEASE_SECONDS, Math.ceil(remainingMs() / 1000));
        const claimed = await deps.ledger.claim(item, leaseSeconds);
        if (!claimed) candidate.skipped = LOST_CLAIM;
        return claimed;
      } catch (error) {
        return decide(i, failure('retryable', `could not claim it in the ledger: ${messageOf(error)}`));
      }
    },
  );

  const claimedAt: number[] = [];
  const claimed: LedgerItem[] = [];
  claims.forEach((claim, i) => {
    if (claim === undefined) return;
    claimedAt.push(i);
    claimed.push(claim);
  });
  const released = await releaseLocks(
    claimed.map(({ lockId, userId }) => ({ lockId, userId })),
    { ...deps.engine, recorder: deps.ledger.claimRecorder(claimed) },
    deps.options,
  );
  released.forEach((result, j) => (results[claimedAt[j] as number] = result));
  return report(candidates, results, clock.now() - startedAt, false);
}

/**
 * Reads the open items page by page and keeps the ones to release or close, at most `limit`. Stops reading once
 * it has them, or when `canContinue` says no claim could follow any more.
 */
async function findCandidates(
  ledger: SweepLedger,
  input: SweepInput,
  now: () => number,
  canContinue: () => boolean,
): Promise<Found[]> {
  const found: Found[] = [];
  for await (const page of ledger.openItems()) {
    const judgedAt = now();
    for (const item of page) {
      const verdict = judge(item, judgedAt, input);
      if (verdict.action === 'leave') continue;
      found.push({ item, verdict });
      if (found.length >= input.limit) return found;
    }
    if (!canContinue()) break;
  }
  return found;
}

function describe(item: LedgerItem, verdict: Found['verdict'], entry: Entry): SweepCandidate {
  return {
    lockId: entry.ok ? item.lockId : preview(item.lockId),
    userId: entry.ok ? item.userId : preview(item.userId),
    status: item.status,
    heartbeatAt: item.heartbeatAt,
    reason: verdict.reason,
    action: verdict.action,
  };
}

function invalid(entry: Extract<Entry, { ok: false }>): LockResult {
  return {
    lockId: entry.lockId,
    userId: entry.userId,
    outcome: 'failed',
    attempts: 0,
    error: { kind: 'invalid-input', message: entry.message },
  };
}

function report(
  candidates: SweepCandidate[],
  decided: ReadonlyArray<LockResult | undefined>,
  durationMs: number,
  dryRun: boolean,
): SweepReport {
  const results = decided.filter((r): r is LockResult => r !== undefined);
  const count = (outcome: LockResult['outcome']) => results.filter((r) => r.outcome === outcome).length;
  const summary: SweepSummary = {
    requested: candidates.length,
    released: count('released'),
    alreadyReleased: count('alreadyReleased'),
    failed: count('failed'),
    duplicates: 0,
    skipped: candidates.filter((c) => c.skipped !== undefined).length,
    closedExpired: candidates.filter((c) => c.closed === true).length,
    durationMs,
  };
  if (dryRun) {
    summary.wouldRelease = count('wouldRelease');
    summary.wouldClose = candidates.filter((c) => c.action === 'close').length;
  }
  return { summary, results, candidates };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
