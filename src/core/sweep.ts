/**
 * The sweep use case: find the ledger's stale and failed locks, claim them, release them through the
 * release engine and report. Pure: the ledger, KooDrive, time and randomness come in as ports.
 */
import { mapConcurrently, releaseLocks, type EngineDeps, type EngineOptions } from './engine';
import { ReleaserError } from './errors';
import {
  describeType,
  type LockResult,
  type OutcomeRecorder,
  type ReleaseReport,
  type ReportSummary,
} from './model';
import { buildReport } from './release';
import { lockKey, toEntry, type Entry } from './requests';

export type LedgerStatus = 'HELD' | 'RELEASING' | 'RELEASED' | 'RELEASE_FAILED';

/** One ledger item (README, "Ledger item"); times in epoch ms except expiresAt (epoch seconds). */
export interface LedgerItem {
  lockId: string;
  userId: string;
  moduleCode?: string;
  status: LedgerStatus;
  holder?: string;
  acquiredAt: number;
  heartbeatAt: number;
  releasedAt?: number;
  releaseAttempts: number;
  lastError?: string;
  version: number;
  expiresAt?: number;
}

/** Port: the ledger as the sweep sees it. */
export interface SweepLedger {
  /** HELD and RELEASING items whose heartbeatAt < staleBefore, and every RELEASE_FAILED item; at most `limit`. */
  findCandidates(query: {
    staleBefore: number;
    limit: number;
  }): Promise<{ items: LedgerItem[]; requests: number }>;
  /** Marks the item RELEASING if its version is still the one read; undefined when someone wrote it meanwhile. */
  claim(item: LedgerItem): Promise<LedgerItem | undefined>;
  /** Records the final outcome of locks this sweep claimed. */
  claimRecorder(claimed: readonly LedgerItem[]): OutcomeRecorder;
}

export interface SweepInput {
  dryRun: boolean;
  staleAfterSeconds: number;
  limit: number;
}

export interface SweepDeps {
  ledger: SweepLedger;
  /** The engine's ports; the recorder is the ledger's claim recorder. */
  engine: Omit<EngineDeps, 'recorder'>;
  options: EngineOptions;
}

export interface SweepCandidate {
  lockId: string;
  userId: string;
  status: LedgerStatus;
  heartbeatAt: number;
  /** Why it qualifies, e.g. "heartbeat 1260 s old (stale after 900 s)". */
  reason: string;
  /** Set when this run left it alone: its holder heart-beat or another sweep claimed it after the query. */
  skipped?: string;
}

export interface SweepSummary extends ReportSummary {
  /** Candidates left alone because the claim was lost (see SweepCandidate.skipped): neither released nor failed. */
  skipped: number;
}

/** The release report (README, "Requests and answers") plus the candidates; requested = released + alreadyReleased + failed + skipped. */
export interface SweepReport extends ReleaseReport {
  summary: SweepSummary;
  candidates: SweepCandidate[];
}

export const MIN_STALE_AFTER_SECONDS = 60;
export const MAX_STALE_AFTER_SECONDS = 7 * 24 * 3600;
export const MAX_SWEEP_LIMIT = 10_000;
/** A suggested default for `limit` when the event names none. */
export const DEFAULT_SWEEP_LIMIT = 1000;

const LOST_CLAIM = 'its holder heart-beat or another sweep claimed it after the query';

/**
 * One sweep: the candidates, then (unless a dry run) a claim on each, then the claimed ones released through
 * the engine with their outcomes recorded. A lost claim is reported as `skipped` (neither released nor
 * failed); a candidate not claimed for lack of time is `failed` with kind `deadline` and stays as it was.
 */
export async function sweep(input: SweepInput, deps: SweepDeps): Promise<SweepReport> {
  const { clock, remainingMs } = deps.engine;
  const startedAt = clock.now();
  const { items } = await deps.ledger.findCandidates({
    staleBefore: startedAt - input.staleAfterSeconds * 1000,
    limit: input.limit,
  });
  const candidates = items.map((item) => describeCandidate(item, startedAt, input.staleAfterSeconds));
  // IDs written by workers are checked like any request before they can reach an HTTP header.
  const entries = items.map((item) => toEntry('ledger item', item.lockId, item.userId));

  if (input.dryRun) {
    const outcomes = new Map<string, LockResult>();
    for (const entry of entries) {
      if (!entry.ok) continue;
      outcomes.set(lockKey(entry.lock), { ...entry.lock, outcome: 'wouldRelease', attempts: 0 });
    }
    return report(entries, outcomes, candidates, clock.now() - startedAt, true);
  }

  // Claim first, with the engine's concurrency; no claim starts when a release could no longer follow it.
  const claimReserveMs =
    deps.options.attemptTimeoutMs + deps.options.safetyMarginMs + 2 * deps.options.recordReserveMs;
  const outcomes = new Map<string, LockResult>();
  const claims = await mapConcurrently(
    items,
    deps.options.concurrency,
    async (item, i): Promise<LedgerItem | undefined> => {
      const entry = entries[i];
      if (!entry?.ok) return undefined;
      if (remainingMs() < claimReserveMs) {
        outcomes.set(
          lockKey(entry.lock),
          notClaimed(entry, 'deadline', 'not claimed: too little time left before the Lambda deadline'),
        );
        return undefined;
      }
      try {
        const claimed = await deps.ledger.claim(item);
        if (!claimed) (candidates[i] as SweepCandidate).skipped = LOST_CLAIM;
        return claimed;
      } catch (error) {
        const message = `could not claim it in the ledger: ${error instanceof Error ? error.message : String(error)}`;
        outcomes.set(lockKey(entry.lock), notClaimed(entry, 'retryable', message));
        return undefined;
      }
    },
  );
  const claimed = claims.filter((c): c is LedgerItem => c !== undefined);
  const results = await releaseLocks(
    claimed.map(({ lockId, userId }) => ({ lockId, userId })),
    { ...deps.engine, recorder: deps.ledger.claimRecorder(claimed) },
    deps.options,
  );
  for (const result of results) outcomes.set(lockKey(result), result);
  const reported = entries.filter((_, i) => candidates[i]?.skipped === undefined);
  return report(reported, outcomes, candidates, clock.now() - startedAt, false);
}

function report(
  entries: readonly Entry[],
  outcomes: ReadonlyMap<string, LockResult>,
  candidates: SweepCandidate[],
  durationMs: number,
  dryRun: boolean,
): SweepReport {
  const { summary, results } = buildReport(entries, outcomes, durationMs, dryRun);
  const skipped = candidates.filter((c) => c.skipped !== undefined).length;
  return { summary: { ...summary, requested: candidates.length, skipped }, results, candidates };
}

function describeCandidate(item: LedgerItem, now: number, staleAfterSeconds: number): SweepCandidate {
  const ageSeconds = Math.floor((now - item.heartbeatAt) / 1000);
  const reason =
    item.status === 'RELEASE_FAILED'
      ? `release failed before: ${item.lastError ?? 'no error recorded'}`
      : item.status === 'RELEASING'
        ? `claimed by a sweep that stopped ${ageSeconds} s ago`
        : `heartbeat ${ageSeconds} s old (stale after ${staleAfterSeconds} s)`;
  return {
    lockId: item.lockId,
    userId: item.userId,
    status: item.status,
    heartbeatAt: item.heartbeatAt,
    reason,
  };
}

function notClaimed(
  entry: Extract<Entry, { ok: true }>,
  kind: 'deadline' | 'retryable',
  message: string,
): LockResult {
  return { ...entry.lock, outcome: 'failed', attempts: 0, error: { kind, message } };
}

/** The sweep event is unusable: a field it reads has the wrong type or range. */
export class SweepEventError extends ReleaserError {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`invalid sweep event: ${problems.join('; ')}`);
    this.problems = problems;
  }
}

/**
 * Reads `dryRun`, `staleAfterSeconds` and `limit` from any JSON object (a scheduled event, `{}`, a direct
 * invoke); other fields are ignored, absent ones take the defaults. Throws SweepEventError listing every problem.
 */
export function parseSweepEvent(
  event: unknown,
  defaults: { staleAfterSeconds: number; limit: number },
): SweepInput {
  if (event === undefined || event === null) event = {};
  if (typeof event !== 'object' || Array.isArray(event)) {
    throw new SweepEventError([`the event must be a JSON object, got ${describeType(event)}`]);
  }
  const fields = event as Record<string, unknown>;
  const problems: string[] = [];
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const value = fields[name];
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max}, got ${shown(value)}`);
      return fallback;
    }
    return value;
  };
  const dryRun = fields.dryRun ?? false;
  if (typeof dryRun !== 'boolean') problems.push(`dryRun must be true or false, got ${shown(dryRun)}`);
  const input: SweepInput = {
    dryRun: dryRun === true,
    staleAfterSeconds: int(
      'staleAfterSeconds',
      defaults.staleAfterSeconds,
      MIN_STALE_AFTER_SECONDS,
      MAX_STALE_AFTER_SECONDS,
    ),
    limit: int('limit', defaults.limit, 1, MAX_SWEEP_LIMIT),
  };
  if (problems.length > 0) throw new SweepEventError(problems);
  return input;
}

const SHOWN_LENGTH = 40;

/**
 * A bad field's value for an error message: short strings and scalars as JSON, a long string cut with its
 * length, anything else by its type. Never the whole value (a 1 MB string would make a 1 MB message) and never
 * JSON.stringify of a structure (a deeply nested array overflows the stack).
 */
function shown(value: unknown): string {
  if (typeof value === 'string') {
    return value.length > SHOWN_LENGTH
      ? `${JSON.stringify(value.slice(0, SHOWN_LENGTH))}… (${value.length} characters)`
      : JSON.stringify(value);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return describeType(value);
}
