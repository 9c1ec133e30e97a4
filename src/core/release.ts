/**
 * The release use case: an SQS batch or a direct-invoke payload in, `batchItemFailures` or the
 * release report out. Every requested lock is accounted for exactly once.
 */
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import {
  leaseDecisions,
  mapConcurrently,
  releaseLocks,
  undecidedResult,
  type EngineDeps,
  type EngineOptions,
} from './engine';
import { ConfigError } from './errors';
import {
  KOODRIVE_LOCK_SECONDS,
  leaseLeftSeconds,
  type LeasePolicy,
  type LedgerItem,
  type LedgerStatus,
  type ReleaseLedger,
  type UserLedger,
} from './lease';
import type { LockResult, ReleaseReport, ReportSummary } from './model';
import {
  distinctLocks,
  lockKey,
  parseDirectPayload,
  parseSqsBody,
  refusalError,
  toEntry,
  type Entry,
  type FindByUserRequest,
  type RefusedRequest,
} from './requests';

export interface ReleaseContext {
  /** The engine's ports; its recorder is the ledger when one is configured. */
  engine: Omit<EngineDeps, 'liveLeases'>;
  options: EngineOptions;
  defaultUserId: string | undefined;
  maxLocksPerInvoke: number;
  /**
   * The ledger the live-lease check reads, and the sweep's lease policy it judges by; absent without a ledger
   * (then every lock is released as asked).
   */
  leases?: { ledger: Pick<ReleaseLedger, 'readItems'>; policy: LeasePolicy };
  /** The ledger's user index, for find-by-user; absent when no ledger is configured. */
  userLedger?: UserLedger;
  /**
   * Told once of all the invalid entries of a direct payload (one log line for them all, however many); without
   * it each goes to `engine.onResult`.
   */
  onInvalidEntries?: (results: LockResult[]) => void;
}

/** True for an event SQS delivered: every record names its message and comes from aws:sqs. */
export function isSqsEvent(event: unknown): event is SQSEvent {
  if (typeof event !== 'object' || event === null) return false;
  const records = (event as { Records?: unknown }).Records;
  return (
    Array.isArray(records) &&
    records.length > 0 &&
    records.every(
      (r: unknown) =>
        typeof r === 'object' &&
        r !== null &&
        (r as { eventSource?: unknown }).eventSource === 'aws:sqs' &&
        typeof (r as { messageId?: unknown }).messageId === 'string',
    )
  );
}

/** SQS: each record names one lock; the records whose lock was not released come back. */
export async function releaseSqsBatch(event: SQSEvent, ctx: ReleaseContext): Promise<SQSBatchResponse> {
  const entries = event.Records.map((record) => parseSqsBody(record.body, ctx.defaultUserId));
  // Each decision is logged with the messages that asked for the lock.
  const messageIds = new Map<string, string[]>();
  entries.forEach((entry, i) => {
    const messageId = (event.Records[i] as SQSRecord).messageId;
    if (!entry.ok) {
      ctx.engine.onResult?.(invalidResult(entry), { messageIds: [messageId] });
      return;
    }
    const key = lockKey(entry.lock);
    messageIds.set(key, [...(messageIds.get(key) ?? []), messageId]);
  });
  const onResult = ctx.engine.onResult;
  const outcomes = await releaseDistinct(entries, false, {
    ...ctx,
    engine: {
      ...ctx.engine,
      ...(onResult
        ? { onResult: (r: LockResult) => onResult(r, { messageIds: messageIds.get(lockKey(r)) ?? [] }) }
        : {}),
    },
  });
  const batchItemFailures = event.Records.filter((_, i) => !succeeded(entries[i] as Entry, outcomes)).map(
    (record) => ({
      itemIdentifier: record.messageId,
    }),
  );
  return { batchItemFailures };
}

/** A message is done when its lock was released, or is held by a live lease (asking again would not change that). */
function succeeded(entry: Entry, outcomes: ReadonlyMap<string, LockResult>): boolean {
  if (!entry.ok) return false;
  const outcome = outcomes.get(lockKey(entry.lock))?.outcome;
  return outcome === 'released' || outcome === 'alreadyReleased' || outcome === 'held';
}

/** Direct invoke: the payload's locks (or the user's, found in the ledger), released (or, with dryRun, only checked) and reported. */
export async function releaseDirect(
  payload: unknown,
  ctx: ReleaseContext,
): Promise<ReleaseReport | FindByUserReport> {
  const startedAt = ctx.engine.clock.now();
  const request = parseDirectPayload(payload, ctx.defaultUserId, ctx.maxLocksPerInvoke);
  if ('refused' in request) return refusedReport(request, ctx.engine.clock.now() - startedAt);
  if (request.kind === 'findByUser') return releaseFoundByUser(request, ctx, startedAt);
  return releaseEntries(request.entries, request.dryRun, request.force, ctx, startedAt);
}

/**
 * The answer to a payload refused as a whole: the error naming the field, no results, and nothing counted as
 * released or failed (nothing was attempted); `requested` is how many entries the payload held.
 */
export function refusedReport(request: RefusedRequest, durationMs: number): ReleaseReport {
  return {
    summary: { ...emptySummary(), requested: request.requested, durationMs },
    results: [],
    error: refusalError(request.refused),
  };
}

function emptySummary(): ReportSummary {
  return { requested: 0, released: 0, alreadyReleased: 0, failed: 0, held: 0, duplicates: 0, durationMs: 0 };
}

async function releaseEntries(
  entries: readonly Entry[],
  dryRun: boolean,
  force: boolean,
  ctx: ReleaseContext,
  startedAt: number,
): Promise<ReleaseReport> {
  if (dryRun) {
    // A dry run decides nothing: no decision lines, no metrics, no writes, only the report (with a ledger, from
    // the same read and rule a release would decide by: held locks show as held).
    return buildReport(
      entries,
      await wouldRelease(entries, force, ctx),
      ctx.engine.clock.now() - startedAt,
      true,
    );
  }
  // Invalid entries are decisions too (a log line and LocksFailed), as invalid SQS records are.
  const invalid = entries.filter((e): e is Extract<Entry, { ok: false }> => !e.ok).map(invalidResult);
  if (invalid.length > 0) {
    if (ctx.onInvalidEntries) ctx.onInvalidEntries(invalid);
    else for (const result of invalid) ctx.engine.onResult?.(result);
  }
  const outcomes = await releaseDistinct(entries, force, ctx);
  return buildReport(entries, outcomes, ctx.engine.clock.now() - startedAt);
}

// ---- find-by-user ----

/** A lock found by user: its result, and what the ledger said of it when it was found. */
export interface FoundLockResult extends Omit<LockResult, 'status'> {
  moduleCode?: string;
  /** The item's status as found (a `held` lock's: as its decision read it). */
  status: LedgerStatus;
  holder?: string;
  /** The last heartbeat the ledger holds, epoch ms. */
  heartbeatAt: number;
  /** Seconds until the lease (plus the skew allowance) runs out, by the sweep's rule; 0 once it has. */
  leaseLeftSeconds: number;
}

/** The answer to find-by-user: the release report of the user's open items, each with its ledger state. */
export interface FindByUserReport extends Omit<ReleaseReport, 'results'> {
  userId: string;
  moduleCode?: string;
  results: FoundLockResult[];
  /** Set when the ledger holds no open item: what that means for the lock the user waits for. */
  note?: string;
}

/** What an empty find-by-user answer means (the lock was not taken through the holder). */
export function noOpenItemNote(userId: string, moduleCode: string | undefined): string {
  const what = moduleCode === undefined ? `user ${userId}` : `user ${userId}, module ${moduleCode}`;
  const minutes = KOODRIVE_LOCK_SECONDS / 60;
  return (
    `no open ledger item for ${what}: a lock blocking it was not taken through the holder (or was released ` +
    `already), so this service cannot find or release it; KooDrive frees it at most ${minutes} minutes after its last renewal`
  );
}

/**
 * Find-by-user: the user's open ledger items (of one module when asked), read through the user index, then
 * released through the same path as a list of lock IDs (the same rules, dryRun and force), each result carrying
 * the item's module, status, holder, heartbeat and lease left. No item: the answer says what that means.
 */
async function releaseFoundByUser(
  request: FindByUserRequest,
  ctx: ReleaseContext,
  startedAt: number,
): Promise<FindByUserReport> {
  if (!ctx.userLedger || !ctx.leases) {
    throw new ConfigError('invalid environment', ['LOCK_LEDGER_TABLE is required to find locks by userId']);
  }
  const asked = {
    userId: request.userId,
    ...(request.moduleCode !== undefined ? { moduleCode: request.moduleCode } : {}),
  };
  let items: LedgerItem[];
  try {
    items = await ctx.userLedger.openItemsOf(request.userId, request.moduleCode);
  } catch (error) {
    return {
      ...asked,
      summary: { ...emptySummary(), durationMs: ctx.engine.clock.now() - startedAt },
      results: [],
      error: {
        kind: 'retryable',
        message: `the ledger could not be read, nothing was released: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
      },
    };
  }
  if (items.length === 0) {
    return {
      ...asked,
      summary: {
        ...emptySummary(),
        ...(request.dryRun ? { wouldRelease: 0 } : {}),
        durationMs: ctx.engine.clock.now() - startedAt,
      },
      results: [],
      note: noOpenItemNote(request.userId, request.moduleCode),
    };
  }
  // The lease left as found, before anything was done.
  const foundAt = ctx.engine.clock.now();
  const policy = ctx.leases.policy;
  // IDs written by workers are checked like any request before they can reach an HTTP header.
  const entries = items.map((item) => toEntry('ledger item', item.lockId, item.userId));
  const report = await releaseEntries(entries, request.dryRun, request.force, ctx, startedAt);
  // Lock IDs are the ledger's key: no duplicates, so the report has one result per item, in the items' order.
  const results = report.results.map((result, i): FoundLockResult => {
    const item = items[i] as LedgerItem;
    // A held lock's status, holder and lease left come from the decision's own (later, consistent) read.
    return {
      ...(item.moduleCode !== undefined ? { moduleCode: item.moduleCode } : {}),
      status: item.status,
      ...(item.holder !== undefined ? { holder: item.holder } : {}),
      heartbeatAt: item.heartbeatAt,
      leaseLeftSeconds: leaseLeftSeconds(item, foundAt, policy),
      ...result,
    };
  });
  return { ...asked, summary: report.summary, results };
}

async function releaseDistinct(
  entries: readonly Entry[],
  force: boolean,
  ctx: ReleaseContext,
): Promise<Map<string, LockResult>> {
  const engine: EngineDeps = ctx.leases
    ? { ...ctx.engine, liveLeases: { ...ctx.leases, force } }
    : ctx.engine;
  const results = await releaseLocks(distinctLocks(entries), engine, ctx.options);
  return new Map(results.map((result) => [lockKey(result), result]));
}

async function wouldRelease(
  entries: readonly Entry[],
  force: boolean,
  ctx: ReleaseContext,
): Promise<Map<string, LockResult>> {
  const locks = distinctLocks(entries);
  const decisions = ctx.leases && leaseDecisions(locks, { ...ctx.leases, force }, ctx.engine.clock);
  const results = await mapConcurrently(locks, ctx.options.concurrency, async (lock, index) => {
    const decision = decisions ? await decisions(index) : ({ action: 'release' } as const);
    if (decision.action !== 'release') return undecidedResult(lock, decision);
    return { ...lock, outcome: 'wouldRelease' as const, attempts: 0 };
  });
  return new Map(results.map((result) => [lockKey(result), result]));
}

function invalidResult(entry: Extract<Entry, { ok: false }>): LockResult {
  return {
    lockId: entry.lockId,
    userId: entry.userId,
    outcome: 'failed',
    attempts: 0,
    error: { kind: 'invalid-input', message: entry.message },
  };
}

/** One result per distinct valid lock and one per invalid entry, in the order they were asked for. */
export function buildReport(
  entries: readonly Entry[],
  outcomes: ReadonlyMap<string, LockResult>,
  durationMs: number,
  dryRun = false,
): ReleaseReport {
  const results: LockResult[] = [];
  const reported = new Set<string>();
  let duplicates = 0;
  for (const entry of entries) {
    if (!entry.ok) {
      results.push(invalidResult(entry));
      continue;
    }
    const key = lockKey(entry.lock);
    if (reported.has(key)) {
      duplicates += 1;
      continue;
    }
    reported.add(key);
    const result = outcomes.get(key);
    // The engine answers for every lock it is given; a missing one would be a bug, never a success.
    results.push(
      result ?? {
        ...entry.lock,
        outcome: 'failed',
        attempts: 0,
        error: { kind: 'permanent', message: 'internal error: no outcome recorded for this lock' },
      },
    );
  }
  const count = (outcome: LockResult['outcome']) => results.filter((r) => r.outcome === outcome).length;
  return {
    summary: {
      requested: entries.length,
      released: count('released'),
      alreadyReleased: count('alreadyReleased'),
      failed: count('failed'),
      held: count('held'),
      duplicates,
      ...(dryRun ? { wouldRelease: count('wouldRelease') } : {}),
      durationMs,
    },
    results,
  };
}

/** What the release function answers: `batchItemFailures` to SQS, a report to a direct invoke. */
export type ReleaseAnswer = SQSBatchResponse | ReleaseReport | FindByUserReport;

/** The release function's whole answer: SQS events get `batchItemFailures`, anything else a report. */
export function handleReleaseEvent(event: unknown, ctx: ReleaseContext): Promise<ReleaseAnswer> {
  return isSqsEvent(event) ? releaseSqsBatch(event, ctx) : releaseDirect(event, ctx);
}
