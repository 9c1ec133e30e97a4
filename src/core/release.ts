/**
 * The release use case: an SQS batch or a direct-invoke payload in, `batchItemFailures` or the
 * release report out. Every requested lock is accounted for exactly once.
 */
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { releaseLocks, type EngineDeps, type EngineOptions } from './engine';
import type { LeasePolicy, ReleaseLedger } from './lease';
import type { LockResult, ReleaseReport } from './model';
import { distinctLocks, lockKey, parseDirectPayload, parseSqsBody, type Entry } from './requests';

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
  leases?: { ledger: Pick<ReleaseLedger, 'get'>; policy: LeasePolicy };
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

/** Direct invoke: the payload's locks, released (or, with dryRun, only checked) and reported. */
export async function releaseDirect(payload: unknown, ctx: ReleaseContext): Promise<ReleaseReport> {
  const startedAt = ctx.engine.clock.now();
  const request = parseDirectPayload(payload, ctx.defaultUserId, ctx.maxLocksPerInvoke);
  if ('refused' in request) {
    return {
      summary: {
        requested: request.requested,
        released: 0,
        alreadyReleased: 0,
        failed: request.requested,
        held: 0,
        duplicates: 0,
        durationMs: ctx.engine.clock.now() - startedAt,
      },
      results: [],
      error: { kind: 'invalid-input', message: request.refused },
    };
  }
  if (request.dryRun) {
    // A dry run decides nothing: no decision lines, no metrics, only the report.
    return buildReport(
      request.entries,
      wouldRelease(request.entries),
      ctx.engine.clock.now() - startedAt,
      true,
    );
  }
  // An invalid entry is a decision too (a log line and LocksFailed), as an invalid SQS record is.
  for (const entry of request.entries) if (!entry.ok) ctx.engine.onResult?.(invalidResult(entry));
  const outcomes = await releaseDistinct(request.entries, request.force, ctx);
  return buildReport(request.entries, outcomes, ctx.engine.clock.now() - startedAt);
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

function wouldRelease(entries: readonly Entry[]): Map<string, LockResult> {
  return new Map(
    distinctLocks(entries).map((lock) => [lockKey(lock), { ...lock, outcome: 'wouldRelease', attempts: 0 }]),
  );
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

/** The release function's whole answer: SQS events get `batchItemFailures`, anything else a report. */
export function handleReleaseEvent(
  event: unknown,
  ctx: ReleaseContext,
): Promise<SQSBatchResponse | ReleaseReport> {
  return isSqsEvent(event) ? releaseSqsBatch(event, ctx) : releaseDirect(event, ctx);
}
