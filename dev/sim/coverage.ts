/**
 * How often each protocol branch ran, counted from what the production code did, never from what the simulation
 * meant to do: a write the in-memory ledger applied (or refused) and the state it found, an answer the KooDrive
 * model gave, a report the sweep returned, an error a holder threw, a hook the holder called. `npm run simulate`
 * prints the counts and fails when a branch of REQUIRED_BRANCHES ran 0 times: a path that never runs is a path the
 * simulation proves nothing about.
 */

/** Every branch the simulation must run at least once in a CI run, with what counts it. */
export const REQUIRED_BRANCHES = {
  // holder (src/ledger/holder.ts), seen at the ledger and KooDrive and in what hold() threw
  'holder.acquire': 'recordAcquired wrote a HELD item',
  'holder.acquireAborted': 'hold() threw AcquireAbortedError (the ledger write failed after the create)',
  'holder.heartbeat': 'a heartbeat moved heartbeatAt',
  'holder.heartbeat.laterLanded': 'a heartbeat found a later one already landed (heartbeatAt kept)',
  'holder.heartbeat.takenOver': 'a heartbeat was refused: the item is no longer its HELD item',
  'holder.renew': 'KooDrive renewed a live lock for a holder',
  'holder.renew.refused': 'KooDrive refused a renewal (lock gone or replaced)',
  'holder.lost.safeTime': 'work saw LockLostError: no heartbeat within the safe time',
  'holder.lost.refused': 'work saw LockLostError: KooDrive refused the renewal',
  'holder.lost.takenOver': 'work saw LockLostError: the ledger item was taken over',
  'holder.released': 'a holder wrote RELEASED over its HELD item',
  'holder.releaseFailed': "a holder's release after work failed (onReleaseError)",
  'holder.recordedReleaseFailed': 'a holder wrote RELEASE_FAILED over its HELD item',
  'holder.overwroteReleasing': "a holder's outcome write landed on a sweep's RELEASING claim",
  'holder.closed': 'close() (a planned stop) ended with locks that were in work',
  // sweep (src/core/sweep.ts, src/core/lease.ts judge), seen at the ledger
  'sweep.claim.held': 'a sweep claimed a stale HELD item',
  'sweep.claim.releasing': 'a sweep claimed a RELEASING item whose sweep stopped',
  'sweep.claim.releaseFailed': 'a sweep claimed a RELEASE_FAILED item to retry it',
  'sweep.claim.lost': 'a sweep lost a claim race (version changed after its read)',
  'sweep.record.released': 'a sweep recorded RELEASED (KooDrive released the lock)',
  'sweep.record.alreadyReleased': 'a sweep recorded RELEASED (KooDrive: no such lock)',
  'sweep.record.failed': 'a sweep recorded RELEASE_FAILED on its claim',
  'sweep.record.failedConflict': "a sweep's failure write lost its version check",
  'sweep.close.expired': 'a sweep closed a RELEASE_FAILED item as EXPIRED',
  'sweep.close.lost': "a sweep's EXPIRED close lost its version check",
  'sweep.skipped': 'a sweep report listed a skipped candidate',
  'sweep.deadline': 'a sweep report listed a candidate failed for lack of time',
  'sweep.claim.releaseFailedForced': 'a sweep claimed a RELEASE_FAILED item of a forced release (at once)',
  // release path (src/core/release.ts and its live-lease decision), from its results and its ledger writes
  'release.held': 'a request was answered held: the lease is live (no DELETE, no SQS failure)',
  'release.released': 'a request released a lock',
  'release.released.forced': 'a forced direct invoke released a lock',
  'release.alreadyReleased': 'a request found the lock gone in KooDrive',
  'release.unreadable': 'a lock was refused (retryable) because its ledger item could not be read',
  'release.sqsForceRefused': 'an SQS body with "force" was refused as an invalid entry',
  'release.failed.retryable': 'a request failed its DELETEs',
  'release.record.failed': 'the release path wrote RELEASE_FAILED on the item it read',
  'release.record.failedConflict': "the release path's failure write lost its basis check",
  'release.record.released.noItem': 'the release path released a lock the ledger had no item for',
  'release.record.forced': 'the release path wrote a forced outcome (forcedAt)',
  // KooDrive (the model's answers)
  'koodrive.revive': 'a renew revived an expired lock (KooDrive with revive)',
  'koodrive.renew.expiredRefused': 'a renew of an expired lock was refused (KooDrive without revive)',
  'koodrive.release.live': 'a DELETE freed a live lock',
  'koodrive.release.gone': 'a DELETE found no live lock (alreadyReleased)',
  // the ledger's reads (DynamoDB's eventual consistency)
  'ledger.read.stale': 'an openItems read returned an older version of an item',
  'ledger.index.lagging': 'the openLocks index listed an item by an older state',
} as const;

export type Branch = keyof typeof REQUIRED_BRANCHES;

export class Coverage {
  readonly counts = new Map<string, number>();

  hit(branch: string): void {
    this.counts.set(branch, (this.counts.get(branch) ?? 0) + 1);
  }
}

/** Adds counts into a plain record (summaries cross worker threads as plain objects). */
export function mergeCounts(into: Record<string, number>, from: Iterable<[string, number]>): void {
  for (const [k, n] of from) into[k] = (into[k] ?? 0) + n;
}

/** Required branches that ran 0 times. */
export function missingBranches(counts: Record<string, number>): string[] {
  return Object.keys(REQUIRED_BRANCHES).filter((b) => !(counts[b] ?? 0));
}

export function formatCoverage(counts: Record<string, number>): string[] {
  const lines = ['protocol branches run (counted from what the production code did):'];
  const required = Object.keys(REQUIRED_BRANCHES);
  for (const branch of required) {
    const n = counts[branch] ?? 0;
    lines.push(`  ${branch.padEnd(34)} ${String(n).padStart(9)}${n === 0 ? '   <-- never ran' : ''}`);
  }
  const extra = Object.keys(counts)
    .filter((b) => !required.includes(b))
    .sort();
  for (const branch of extra) lines.push(`  ${branch.padEnd(34)} ${String(counts[branch]).padStart(9)}`);
  const missing = missingBranches(counts);
  lines.push(
    missing.length === 0
      ? `coverage: all ${required.length} listed branches ran`
      : `coverage: ${missing.length} listed branch(es) never ran: ${missing.join(', ')}`,
  );
  return lines;
}
