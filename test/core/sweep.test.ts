/** The sweep use case against the in-memory ledger (which passes DynamoLedger's contract tests) and a fake KooDrive. */
import { describe, expect, it } from 'vitest';
import { MemoryLedger } from '../../src/testing/memory-ledger';
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from '../../src/core/engine';
import type { LedgerItem } from '../../src/core/lease';
import type { AttemptOutcome, LockResult } from '../../src/core/model';
import { sweep, type SweepCandidate, type SweepInput, type SweepLedger } from '../../src/core/sweep';
import { FakeClock, FakeGateway, seededRandom } from '../helpers/fakes';
import { ledgerItem, memoryLedger, MINUTE, NOW, ScriptedSweepLedger, SECOND } from '../helpers/ledger-fakes';

const options: EngineOptions = { ...DEFAULT_ENGINE_OPTIONS };
/** STALE_AFTER_SECONDS 900 for items without a lease, CLOCK_SKEW_SECONDS 10. */
const run: SweepInput = { dryRun: false, staleAfterSeconds: 900, clockSkewSeconds: 10, limit: 500 };
/** An attempt needs 5 s + 1 s, a claim 5 s + 1 s + 2 × 0.5 s = 7 s left before the deadline. */
const CLAIM_RESERVE_MS = 7000;

/** HELD with a 120 s lease: stale once its heartbeat is more than 120 + 10 s old. */
const held = (lockId: string, ageMs: number, extra: Partial<LedgerItem> = {}) =>
  ledgerItem({ lockId, heartbeatAt: NOW - ageMs, ...extra });
const stale = (lockId: string, extra: Partial<LedgerItem> = {}) => held(lockId, 131 * SECOND, extra);
const failing =
  (kind: 'permanent' | 'retryable' = 'permanent') =>
  (): AttemptOutcome => ({
    ok: false,
    error: { kind, httpStatus: kind === 'permanent' ? 400 : 503, message: 'no' },
  });

function setup(items: LedgerItem[], gateway = new FakeGateway(), remainingMs = () => 300_000) {
  const clock = new FakeClock(NOW);
  const memory = memoryLedger(items, clock.now);
  const ledger = new ScriptedSweepLedger(memory);
  const decisions: LockResult[] = [];
  const closed: SweepCandidate[] = [];
  const deps = {
    ledger: ledger as SweepLedger,
    engine: {
      gateway,
      clock,
      random: seededRandom(7),
      remainingMs,
      onResult: (result: LockResult) => decisions.push(result),
    },
    options,
    onClosed: (candidate: SweepCandidate) => closed.push(candidate),
  };
  return { memory, ledger, gateway, clock, deps, decisions, closed };
}

const ids = (items: Array<{ lockId: string }>) => items.map((i) => i.lockId).sort();
/** Sorted by lock ID: the sweep reports in the order it read, shard by shard. */
const sorted = <T extends { lockId: string }>(items: T[]): T[] =>
  [...items].sort((a, b) => (a.lockId < b.lockId ? -1 : 1));

describe('sweep: which items are candidates', () => {
  it('a leased item is stale once heartbeat + lease + skew lies in the past, not a millisecond before', async () => {
    const { memory, gateway, deps } = setup([
      held('at-bound', 130 * SECOND),
      held('past-bound', 130 * SECOND + 1),
      held('short-lease', 16 * SECOND, { leaseSeconds: 5 }),
      held('short-lease-live', 15 * SECOND, { leaseSeconds: 5 }),
    ]);
    const report = await sweep(run, deps);
    expect(ids(report.candidates)).toEqual(['past-bound', 'short-lease']);
    expect(ids(gateway.calls)).toEqual(['past-bound', 'short-lease']);
    expect(memory.items.get('at-bound')).toMatchObject({ status: 'HELD', version: 1 });
    expect(memory.items.get('short-lease-live')).toMatchObject({ status: 'HELD', version: 1 });
    expect(report.candidates.find((c) => c.lockId === 'past-bound')).toEqual({
      lockId: 'past-bound',
      userId: 'user-1',
      status: 'HELD',
      heartbeatAt: NOW - 130 * SECOND - 1,
      reason: 'heartbeat 130 s old (lease 120 s + skew 10 s)',
      action: 'release',
    });
  });

  it('an item without a lease is stale after STALE_AFTER_SECONDS, skew or not', async () => {
    const { gateway, deps } = setup([
      held('old', 900 * SECOND + 1, { leaseSeconds: undefined }),
      held('young', 900 * SECOND, { leaseSeconds: undefined }),
    ]);
    const report = await sweep(run, deps);
    expect(report.candidates).toMatchObject([
      { lockId: 'old', reason: 'heartbeat 900 s old (stale after 900 s without a lease)' },
    ]);
    expect(ids(gateway.calls)).toEqual(['old']);
  });

  it('the skew allowance comes from the input', async () => {
    const { deps } = setup([held('a', 140 * SECOND)]);
    expect((await sweep({ ...run, clockSkewSeconds: 20 }, deps)).candidates).toEqual([]);
    expect((await sweep({ ...run, clockSkewSeconds: 19 }, deps)).candidates).toHaveLength(1);
  });

  it('a RELEASING claim is taken again once its claim lease + skew has passed', async () => {
    const { memory, gateway, deps } = setup([
      ledgerItem({
        lockId: 'dead',
        status: 'RELEASING',
        heartbeatAt: NOW - 310 * SECOND - 1,
        leaseSeconds: 300,
      }),
      ledgerItem({ lockId: 'live', status: 'RELEASING', heartbeatAt: NOW - 310 * SECOND, leaseSeconds: 300 }),
    ]);
    const report = await sweep(run, deps);
    expect(report.candidates).toMatchObject([
      {
        lockId: 'dead',
        status: 'RELEASING',
        reason: 'claimed by a sweep that stopped 310 s ago (lease 300 s + skew 10 s)',
      },
    ]);
    expect(ids(gateway.calls)).toEqual(['dead']);
    expect(memory.items.get('dead')?.status).toBe('RELEASED');
    expect(memory.items.get('live')).toMatchObject({ status: 'RELEASING', version: 1 });
  });

  it('a RELEASE_FAILED item is retried once its last holder’s lease ran out, until its KooDrive lock has certainly expired; then it is closed', async () => {
    // Certainly expired: heartbeat + lease + 30 s request bound + 600 s + skew in the past.
    const { memory, gateway, deps, closed, decisions } = setup([
      ledgerItem({
        lockId: 'recent',
        status: 'RELEASE_FAILED',
        heartbeatAt: NOW - 760 * SECOND,
        lastError: 'retryable: 503',
      }),
      ledgerItem({
        lockId: 'expired',
        status: 'RELEASE_FAILED',
        heartbeatAt: NOW - 760 * SECOND - 1,
        version: 6,
      }),
      ledgerItem({
        lockId: 'expired-no-lease',
        status: 'RELEASE_FAILED',
        heartbeatAt: NOW - 640 * SECOND - 1,
        leaseSeconds: undefined,
      }),
      // Its holder's own release failed 60 s after a heartbeat: the 120 s lease has not run out yet.
      ledgerItem({ lockId: 'lease-left', status: 'RELEASE_FAILED', heartbeatAt: NOW - MINUTE }),
    ]);
    const report = await sweep(run, deps);
    expect(ids(gateway.calls)).toEqual(['recent']);
    expect(sorted(report.candidates)).toEqual([
      expect.objectContaining({ lockId: 'expired', action: 'close', closed: true }),
      expect.objectContaining({ lockId: 'expired-no-lease', action: 'close', closed: true }),
      expect.objectContaining({
        lockId: 'recent',
        action: 'release',
        reason: 'release failed before: retryable: 503',
      }),
    ]);
    expect(report.candidates.find((c) => c.lockId === 'expired')?.reason).toBe(
      'release failed and the KooDrive lock has certainly expired (heartbeat 760 s old)',
    );
    expect(memory.items.get('lease-left')).toMatchObject({ status: 'RELEASE_FAILED', version: 1 });
    expect(report.summary).toMatchObject({
      requested: 3,
      released: 1,
      closedExpired: 2,
      failed: 0,
      skipped: 0,
    });
    expect(report.results.map((r) => r.lockId)).toEqual(['recent']);
    expect(memory.items.get('expired')).toMatchObject({
      status: 'EXPIRED',
      version: 7,
      expiresAt: NOW / 1000 + 7 * 24 * 3600,
    });
    expect(memory.items.get('expired')).not.toHaveProperty('sweepShard');
    expect(memory.items.get('expired-no-lease')?.status).toBe('EXPIRED');
    expect(ids(closed)).toEqual(['expired', 'expired-no-lease']);
    expect(decisions.map((d) => d.lockId)).toEqual(['recent']);
  });

  it('final items are never read, so never candidates', async () => {
    const { gateway, deps } = setup([
      ledgerItem({ lockId: 'r', status: 'RELEASED', heartbeatAt: NOW - 99 * MINUTE }),
      ledgerItem({ lockId: 'e', status: 'EXPIRED', heartbeatAt: NOW - 99 * MINUTE }),
    ]);
    const report = await sweep(run, deps);
    expect(report.candidates).toEqual([]);
    expect(gateway.calls).toEqual([]);
  });
});

describe('sweep: claims and releases', () => {
  it('claims each candidate for the time left in the invocation (at least 60 s) before releasing it', async () => {
    let remaining = 300_500;
    const seen: Array<LedgerItem | undefined> = [];
    const memory: { ledger?: MemoryLedger } = {};
    const gateway = new FakeGateway((lock) => {
      seen.push(structuredClone(memory.ledger?.items.get(lock.lockId)));
      return { ok: true, outcome: 'released' };
    });
    const setupResult = setup([stale('a')], gateway, () => remaining);
    memory.ledger = setupResult.memory;
    setupResult.clock.time += 5 * SECOND;
    await sweep(run, setupResult.deps);
    expect(seen).toEqual([
      expect.objectContaining({
        status: 'RELEASING',
        heartbeatAt: NOW + 5 * SECOND,
        leaseSeconds: 301,
        version: 2,
      }),
    ]);

    remaining = 20_000;
    setupResult.memory.put(stale('b'));
    await sweep(run, setupResult.deps);
    expect(seen[1]).toMatchObject({ lockId: 'b', status: 'RELEASING', leaseSeconds: 60 });
  });

  it('releases the claimed candidates and records RELEASED', async () => {
    const { memory, ledger, clock, deps, decisions } = setup([stale('a'), stale('b'), held('fresh', MINUTE)]);
    ledger.afterRead = () => {
      clock.time += 1234;
    };
    const report = await sweep(run, deps);
    expect(report.summary.durationMs).toBe(1234);
    expect(report.summary).not.toHaveProperty('wouldRelease');
    expect(report.summary).not.toHaveProperty('wouldClose');
    expect(report.summary).toMatchObject({
      requested: 2,
      released: 2,
      failed: 0,
      skipped: 0,
      closedExpired: 0,
      duplicates: 0,
    });
    expect(sorted(report.results)).toEqual([
      { lockId: 'a', userId: 'user-1', outcome: 'released', attempts: 1 },
      { lockId: 'b', userId: 'user-1', outcome: 'released', attempts: 1 },
    ]);
    expect(ledger.claims.sort()).toEqual(['a', 'b']);
    expect(memory.items.get('a')).toMatchObject({ status: 'RELEASED', releasedAt: NOW + 1234 });
    expect(memory.items.get('fresh')).toEqual(held('fresh', MINUTE));
    expect(sorted(decisions)).toEqual(sorted(report.results));
  });

  it('records a failure through the claim recorder, with the attempts and the holder’s heartbeat put back', async () => {
    const { memory, ledger, deps } = setup([stale('a')], new FakeGateway(failing()));
    const report = await sweep(run, deps);
    expect(report.summary).toMatchObject({ requested: 1, released: 0, failed: 1 });
    expect(ledger.recorded).toEqual([
      expect.objectContaining({ lockId: 'a', outcome: 'failed', attempts: 1 }),
    ]);
    expect(memory.items.get('a')).toMatchObject({
      status: 'RELEASE_FAILED',
      heartbeatAt: NOW - 131 * SECOND,
      leaseSeconds: 120,
      releaseAttempts: 1,
      lastError: 'permanent: no',
      version: 3,
    });
  });

  it('a lock whose release keeps failing is retried every run, then closed once its KooDrive lock has certainly expired', async () => {
    const { memory, gateway, clock, deps } = setup([stale('a')], new FakeGateway(failing()));
    const closedAt: number[] = [];
    for (let run_ = 0; run_ < 12; run_ += 1) {
      const report = await sweep(run, deps);
      if (report.summary.closedExpired > 0) closedAt.push(clock.time);
      clock.time += MINUTE;
    }
    // Heartbeat at NOW − 131 s; lease 120 s + 30 s + 600 s + skew 10 s: certainly expired after NOW + 629 s.
    expect(closedAt).toEqual([NOW + 11 * MINUTE]);
    expect(gateway.calls).toHaveLength(11);
    expect(memory.items.get('a')).toMatchObject({ status: 'EXPIRED', releaseAttempts: 11 });
  });

  it('the race: a holder that heart-beats after the read keeps its lock (skipped, neither released nor failed)', async () => {
    const { memory, ledger, gateway, clock, deps, decisions } = setup([
      stale('kept', { holder: 'w-1' }),
      stale('gone'),
    ]);
    ledger.afterRead = async () => {
      clock.time += SECOND;
      await memory.recordHeartbeat('kept', 'w-1', 120);
    };
    const report = await sweep(run, deps);
    expect(report.summary).toMatchObject({ requested: 2, released: 1, failed: 0, skipped: 1 });
    expect(report.results.map((r) => r.lockId)).toEqual(['gone']);
    expect(report.candidates.find((c) => c.lockId === 'kept')?.skipped).toMatch(/heart-beat/);
    expect(gateway.calls.map((c) => c.lockId)).toEqual(['gone']);
    expect(memory.items.get('kept')).toMatchObject({ status: 'HELD', heartbeatAt: NOW + SECOND, version: 2 });
    expect(decisions.map((d) => d.lockId)).toEqual(['gone']);
  });

  it('two overlapping sweeps release each lock once', async () => {
    const items = Array.from({ length: 40 }, (_, i) => stale(`l-${i}`));
    const { memory, gateway, deps } = setup(items);
    const [a, b] = await Promise.all([
      sweep(run, { ...deps, ledger: memory }),
      sweep(run, { ...deps, ledger: memory }),
    ]);
    expect(gateway.calls).toHaveLength(40);
    expect(new Set(gateway.calls.map((c) => c.lockId)).size).toBe(40);
    expect(a.summary.released + b.summary.released).toBe(40);
    expect(a.summary.skipped + b.summary.skipped).toBe(40);
    expect(a.summary.failed + b.summary.failed).toBe(0);
    expect([...memory.items.values()].every((i) => i.status === 'RELEASED')).toBe(true);
  });

  it('a closing race lost to another writer is skipped', async () => {
    const item = ledgerItem({ lockId: 'x', status: 'RELEASE_FAILED', heartbeatAt: NOW - 99 * MINUTE });
    const { memory, ledger, deps, closed } = setup([item]);
    ledger.afterRead = () =>
      memory.record({ lockId: 'x', userId: 'user-1', outcome: 'released', attempts: 1 });
    const report = await sweep(run, deps);
    expect(report.summary).toMatchObject({ requested: 1, closedExpired: 0, skipped: 1, failed: 0 });
    expect(report.candidates[0]?.skipped).toMatch(/wrote it after the read/);
    expect(report.candidates[0]?.closed).toBeUndefined();
    expect(closed).toEqual([]);
    expect(memory.items.get('x')?.status).toBe('RELEASED');
  });

  it('reports ledger items with unusable IDs as invalid-input, without claiming them, as a decision', async () => {
    const { ledger, gateway, deps, decisions } = setup([stale('bad id'), stale('good')]);
    const report = await sweep(run, deps);
    expect(report.results).toMatchObject([
      { lockId: 'bad?id', outcome: 'failed', attempts: 0, error: { kind: 'invalid-input' } },
      { lockId: 'good', outcome: 'released' },
    ]);
    expect(report.results[0]?.error?.message).toBe(
      'ledger item: lockId may hold only printable ASCII characters (0x21-0x7E)',
    );
    expect(report.candidates.map((c) => c.lockId)).toEqual(['bad?id', 'good']);
    expect(ledger.claims).toEqual(['good']);
    expect(gateway.calls.map((c) => c.lockId)).toEqual(['good']);
    expect(decisions.map((d) => [d.lockId, d.outcome])).toEqual([
      ['bad?id', 'failed'],
      ['good', 'released'],
    ]);
  });
});

describe('sweep: failures and the deadline are decisions too', () => {
  it('a claim the ledger cannot write fails that lock only, and is logged and counted', async () => {
    const { ledger, gateway, deps, decisions } = setup([stale('a'), stale('b')]);
    ledger.beforeClaim = (item) => (item.lockId === 'a' ? new Error('throttled') : undefined);
    const report = await sweep(run, deps);
    const failure = {
      lockId: 'a',
      userId: 'user-1',
      outcome: 'failed',
      attempts: 0,
      error: { kind: 'retryable', message: 'could not claim it in the ledger: throttled' },
    };
    expect(sorted(report.results)).toEqual([
      failure,
      expect.objectContaining({ lockId: 'b', outcome: 'released' }),
    ]);
    expect(gateway.calls.map((c) => c.lockId)).toEqual(['b']);
    expect(decisions).toContainEqual(failure);
    expect(decisions).toHaveLength(2);
  });

  it('a close the ledger cannot write is a failed decision; the item stays for the next run', async () => {
    const item = ledgerItem({ lockId: 'x', status: 'RELEASE_FAILED', heartbeatAt: NOW - 99 * MINUTE });
    const { memory, ledger, deps, decisions } = setup([item]);
    ledger.beforeClose = () => new Error('throttled');
    const report = await sweep(run, deps);
    expect(report.summary).toMatchObject({ requested: 1, failed: 1, closedExpired: 0 });
    expect(report.results).toEqual([
      {
        lockId: 'x',
        userId: 'user-1',
        outcome: 'failed',
        attempts: 0,
        error: { kind: 'retryable', message: 'could not close it in the ledger: throttled' },
      },
    ]);
    expect(decisions).toEqual(report.results);
    expect(memory.items.get('x')).toEqual(item);
  });

  it('claims nothing when no release could follow before the deadline, says so per lock, and stops reading', async () => {
    const clock = new FakeClock(NOW);
    const memory = new MemoryLedger({ now: clock.now, pageSize: 1 });
    ['a', 'b', 'c'].forEach((id) => memory.put(stale(id)));
    const ledger = new ScriptedSweepLedger(memory);
    const gateway = new FakeGateway();
    const decisions: LockResult[] = [];
    const report = await sweep(run, {
      ledger,
      engine: {
        gateway,
        clock,
        random: seededRandom(1),
        remainingMs: () => CLAIM_RESERVE_MS - 1,
        onResult: (r) => decisions.push(r),
      },
      options,
    });
    expect(ledger.pagesRead).toBe(1);
    expect(report.summary).toMatchObject({ requested: 1, failed: 1, released: 0 });
    expect(report.results).toEqual([
      {
        lockId: expect.any(String) as string,
        userId: 'user-1',
        outcome: 'failed',
        attempts: 0,
        error: { kind: 'deadline', message: 'not claimed: too little time left before the Lambda deadline' },
      },
    ]);
    expect(decisions).toEqual(report.results);
    expect(ledger.claims).toEqual([]);
    expect(gateway.calls).toEqual([]);
    expect([...memory.items.values()].every((i) => i.status === 'HELD' && i.version === 1)).toBe(true);
  });

  it('with exactly the reserve left it reads on and claims', async () => {
    const clock = new FakeClock(NOW);
    const memory = new MemoryLedger({ now: clock.now, pageSize: 1 });
    ['a', 'b', 'c'].forEach((id) => memory.put(stale(id)));
    const ledger = new ScriptedSweepLedger(memory);
    const gateway = new FakeGateway();
    const engine = { gateway, clock, random: seededRandom(1), remainingMs: () => CLAIM_RESERVE_MS };
    const report = await sweep(run, { ledger, engine, options });
    expect(ledger.pagesRead).toBe(3);
    expect(ledger.claims.sort()).toEqual(['a', 'b', 'c']);
    expect(report.summary.released).toBe(3);
  });

  it('works without decision hooks: failures, deadlines and closes are still reported', async () => {
    const clock = new FakeClock(NOW);
    const memory = memoryLedger(
      [
        stale('a'),
        stale('b'),
        ledgerItem({ lockId: 'x', status: 'RELEASE_FAILED', heartbeatAt: NOW - 99 * MINUTE }),
        ledgerItem({ lockId: 'y z', status: 'RELEASE_FAILED', heartbeatAt: NOW - 99 * MINUTE }),
      ],
      clock.now,
    );
    const ledger = new ScriptedSweepLedger(memory);
    ledger.beforeClaim = (item) => (item.lockId === 'a' ? new Error('throttled') : undefined);
    ledger.beforeClose = (item) => (item.lockId === 'y z' ? new Error('throttled') : undefined);
    const engine = { gateway: new FakeGateway(), clock, random: seededRandom(1), remainingMs: () => 300_000 };
    const report = await sweep(run, { ledger, engine, options });
    expect(report.summary).toMatchObject({ requested: 4, released: 1, failed: 2, closedExpired: 1 });
    // A close that failed for an item whose ID could never reach KooDrive is reported under a safe rendering.
    expect(sorted(report.results).map((r) => [r.lockId, r.userId, r.error?.message])).toEqual([
      ['a', 'user-1', 'could not claim it in the ledger: throttled'],
      ['b', 'user-1', undefined],
      ['y?z', 'user-1', 'could not close it in the ledger: throttled'],
    ]);
  });

  it('stops claiming when time runs short; the claimed locks are released, the rest left as they were', async () => {
    let remaining = 8000;
    const { memory, ledger, deps, decisions } = setup(
      [stale('a'), stale('b'), stale('c'), stale('d')],
      new FakeGateway(),
      () => remaining,
    );
    ledger.beforeClaim = () => {
      remaining -= 500; // each claim takes 0.5 s of the remaining time
      return undefined;
    };
    const report = await sweep(run, { ...deps, options: { ...options, concurrency: 1 } });
    // Claims at 8, 7.5 and 7 s left, in the order read; at 6.5 s the fourth is not claimed.
    const read = report.candidates.map((c) => c.lockId);
    const last = read[3] as string;
    expect(ledger.claims).toEqual(read.slice(0, 3));
    expect(report.results.map((r) => r.outcome)).toEqual(['released', 'released', 'released', 'failed']);
    expect(report.results[3]).toMatchObject({
      lockId: last,
      error: {
        kind: 'deadline',
        message: 'not claimed: too little time left before the Lambda deadline',
      },
    });
    expect(memory.items.get(last)).toEqual(stale(last));
    expect(decisions.map((d) => d.lockId).sort()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('closes need only the safety margin and one ledger write of time; with less they wait for the next run', async () => {
    const expired = () =>
      ledgerItem({ lockId: 'x', status: 'RELEASE_FAILED', heartbeatAt: NOW - 99 * MINUTE });
    const enough = setup([expired()], new FakeGateway(), () => 1500);
    expect((await sweep(run, enough.deps)).summary.closedExpired).toBe(1);

    const short = setup([expired()], new FakeGateway(), () => 1499);
    const report = await sweep(run, short.deps);
    expect(report.summary).toMatchObject({ closedExpired: 0, failed: 1 });
    expect(report.results[0]).toMatchObject({
      lockId: 'x',
      error: {
        kind: 'deadline',
        message: 'not closed: too little time left before the Lambda deadline',
      },
    });
    expect(short.decisions).toEqual(report.results);
    expect(short.memory.items.get('x')).toEqual(expired());
  });
});

describe('sweep: dry run and limit', () => {
  it('dry run: lists every candidate, claims, closes and releases nothing', async () => {
    const items = [
      stale('a'),
      stale('b'),
      held('c', MINUTE),
      ledgerItem({ lockId: 'x', status: 'RELEASE_FAILED', heartbeatAt: NOW - 99 * MINUTE }),
    ];
    const { memory, ledger, gateway, clock, deps, decisions } = setup(items);
    ledger.afterRead = () => {
      clock.time += 321;
    };
    const report = await sweep({ ...run, dryRun: true }, deps);
    expect(report.summary.durationMs).toBe(321);
    expect(report.summary).toMatchObject({
      requested: 3,
      wouldRelease: 2,
      wouldClose: 1,
      released: 0,
      failed: 0,
      skipped: 0,
      closedExpired: 0,
    });
    expect(sorted(report.results)).toEqual([
      { lockId: 'a', userId: 'user-1', outcome: 'wouldRelease', attempts: 0 },
      { lockId: 'b', userId: 'user-1', outcome: 'wouldRelease', attempts: 0 },
    ]);
    expect(ids(report.candidates)).toEqual(['a', 'b', 'x']);
    expect(report.candidates.find((c) => c.lockId === 'x')).toMatchObject({ action: 'close' });
    expect(gateway.calls).toEqual([]);
    expect(ledger.claims).toEqual([]);
    expect(ledger.closes).toEqual([]);
    expect(decisions).toEqual([]);
    for (const item of items) expect(memory.items.get(item.lockId)).toEqual(item);
  });

  it('limit caps the candidates of one run (fresh items do not count) and stops the reading there', async () => {
    const clock = new FakeClock(NOW);
    const memory = new MemoryLedger({ now: clock.now, pageSize: 1 });
    for (let i = 0; i < 5; i += 1) memory.put(held(`fresh-${i}`, MINUTE));
    for (let i = 0; i < 5; i += 1) memory.put(stale(`stale-${i}`));
    // The order the ledger reads them in (shard by shard), one item a page.
    const order: string[] = [];
    for await (const page of memory.openItems()) order.push(...page.map((i) => i.lockId));
    const secondStale = order.filter((id) => id.startsWith('stale-'))[1] as string;

    const ledger = new ScriptedSweepLedger(memory);
    const gateway = new FakeGateway();
    const deps = {
      ledger,
      engine: { gateway, clock, random: seededRandom(2), remainingMs: () => 300_000 },
      options,
    };
    const report = await sweep({ ...run, limit: 2 }, deps);
    expect(report.summary.requested).toBe(2);
    expect(report.candidates.every((c) => c.lockId.startsWith('stale-'))).toBe(true);
    expect(gateway.calls).toHaveLength(2);
    // It read up to the page that held the second candidate, not beyond.
    expect(ledger.pagesRead).toBe(order.indexOf(secondStale) + 1);
  });

  it('every candidate is accounted for exactly once', async () => {
    const items = [
      ...Array.from({ length: 40 }, (_, i) => stale(`l-${i}`)),
      ...Array.from({ length: 5 }, (_, i) =>
        ledgerItem({ lockId: `x-${i}`, status: 'RELEASE_FAILED', heartbeatAt: NOW - 99 * MINUTE }),
      ),
    ];
    const gateway = new FakeGateway((lock) =>
      Number(lock.lockId.slice(2)) % 3 === 0
        ? { ok: false, error: { kind: 'permanent', message: 'no' } }
        : { ok: true, outcome: Number(lock.lockId.slice(2)) % 3 === 1 ? 'released' : 'alreadyReleased' },
    );
    const { memory, ledger, deps, decisions, closed } = setup(items, gateway);
    ledger.afterRead = async () => {
      for (const id of ['l-1', 'l-2', 'l-5']) await memory.recordHeartbeat(id, undefined, 120);
    };
    const { summary, results, candidates } = await sweep(run, deps);
    expect(summary.requested).toBe(45);
    expect(
      summary.released + summary.alreadyReleased + summary.failed + summary.skipped + summary.closedExpired,
    ).toBe(45);
    expect(summary).toMatchObject({ skipped: 3, closedExpired: 5 });
    expect(results.length + summary.skipped + summary.closedExpired).toBe(45);
    expect(
      new Set([
        ...results.map((r) => r.lockId),
        ...candidates.filter((c) => c.skipped || c.closed).map((c) => c.lockId),
      ]).size,
    ).toBe(45);
    expect(decisions.length + closed.length).toBe(results.length + summary.closedExpired);
  });
});
