/** The sweep use case against the DynamoDB ledger on dynalite, with a fake KooDrive gateway. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startDynalite, type LocalDynamo } from '../../dev/dynalite';
import { shardOf } from '../../src/testing/memory-ledger';
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from '../../src/core/engine';
import { SWEEP_SHARDS } from '../../src/core/lease';
import type { AttemptOutcome } from '../../src/core/model';
import { sweep, type SweepInput, type SweepLedger } from '../../src/core/sweep';
import { DynamoLedger, type LedgerItem } from '../../src/ledger/ledger';
import { FakeClock, FakeGateway, seededRandom } from '../helpers/fakes';
import {
  ledgerItem,
  manyItems,
  MINUTE,
  NOW,
  rawItem,
  ScriptedSweepLedger,
  SECOND,
  seedItems,
} from '../helpers/ledger-fakes';
import { httpDynamoCallsFor } from '../../src/ledger/dynamo-http';

const options: EngineOptions = { ...DEFAULT_ENGINE_OPTIONS };
const run: SweepInput = { dryRun: false, staleAfterSeconds: 900, clockSkewSeconds: 10, limit: 10_000 };

/** 120 s lease + 10 s skew: stale after 130 s. */
const stale = (lockId: string, extra: Partial<LedgerItem> = {}) =>
  ledgerItem({ lockId, heartbeatAt: NOW - 3 * MINUTE, ...extra });
const fresh = (lockId: string) => ledgerItem({ lockId, heartbeatAt: NOW - MINUTE });
const unavailable = (): AttemptOutcome => ({
  ok: false,
  error: { kind: 'retryable', httpStatus: 503, message: 'unavailable' },
});

let dynamo: LocalDynamo;
let clock: FakeClock;
let ledger: DynamoLedger;

beforeEach(async () => {
  dynamo = await startDynalite();
  clock = new FakeClock(NOW);
  ledger = newLedger();
});
afterEach(async () => {
  await dynamo.close();
});

function newLedger(): DynamoLedger {
  return new DynamoLedger({
    tableName: dynamo.tableName,
    calls: httpDynamoCallsFor(dynamo.client),
    now: clock.now,
  });
}

function deps(sweepLedger: SweepLedger = ledger, gateway = new FakeGateway(), remainingMs = () => 600_000) {
  return { ledger: sweepLedger, engine: { gateway, clock, random: seededRandom(3), remainingMs }, options };
}

const seed = (items: LedgerItem[]) => seedItems(dynamo.client, dynamo.tableName, items);
const stored = (lockId: string) => rawItem(dynamo.client, dynamo.tableName, lockId);
const statuses = async (ids: string[]): Promise<Record<string, string | undefined>> =>
  Object.fromEntries(
    await Promise.all(
      ids.map(async (id): Promise<[string, string | undefined]> => [id, (await stored(id))?.status]),
    ),
  );

describe('sweep over the DynamoDB ledger', () => {
  it('releases the stale, the failed and the abandoned claims, closes the expired failures, and leaves the rest', async () => {
    await seed([
      stale('held-stale'),
      fresh('held-fresh'),
      ledgerItem({ lockId: 'held-no-lease', heartbeatAt: NOW - 16 * MINUTE, leaseSeconds: undefined }),
      ledgerItem({ lockId: 'held-no-lease-fresh', heartbeatAt: NOW - 14 * MINUTE, leaseSeconds: undefined }),
      ledgerItem({
        lockId: 'releasing-dead',
        status: 'RELEASING',
        heartbeatAt: NOW - 6 * MINUTE,
        leaseSeconds: 300,
      }),
      ledgerItem({
        lockId: 'releasing-live',
        status: 'RELEASING',
        heartbeatAt: NOW - MINUTE,
        leaseSeconds: 300,
      }),
      ledgerItem({
        lockId: 'failed',
        status: 'RELEASE_FAILED',
        heartbeatAt: NOW - 3 * MINUTE,
        lastError: 'retryable: x',
      }),
      // Its last holder's lease (120 s + skew 10 s) is still running: left for a later run.
      ledgerItem({
        lockId: 'failed-lease-left',
        status: 'RELEASE_FAILED',
        heartbeatAt: NOW - MINUTE,
        lastError: 'retryable: x',
      }),
      ledgerItem({ lockId: 'failed-expired', status: 'RELEASE_FAILED', heartbeatAt: NOW - 13 * MINUTE }),
      ledgerItem({ lockId: 'released', status: 'RELEASED', heartbeatAt: NOW - 60 * MINUTE }),
    ]);
    const gateway = new FakeGateway();
    const report = await sweep(run, deps(ledger, gateway));

    expect(report.summary).toMatchObject({
      requested: 5,
      released: 4,
      failed: 0,
      skipped: 0,
      closedExpired: 1,
    });
    expect(Object.fromEntries(report.candidates.map((c) => [c.lockId, c.reason]))).toEqual({
      'held-stale': 'heartbeat 180 s old (lease 120 s + skew 10 s)',
      'held-no-lease': 'heartbeat 960 s old (stale after 900 s without a lease)',
      'releasing-dead': 'claimed by a sweep that stopped 360 s ago (lease 300 s + skew 10 s)',
      failed: 'release failed before: retryable: x',
      'failed-expired': 'release failed and the KooDrive lock has certainly expired (heartbeat 780 s old)',
    });
    expect(gateway.calls.map((c) => c.lockId).sort()).toEqual([
      'failed',
      'held-no-lease',
      'held-stale',
      'releasing-dead',
    ]);
    expect(
      await statuses([
        'held-stale',
        'held-fresh',
        'held-no-lease',
        'held-no-lease-fresh',
        'releasing-dead',
        'releasing-live',
        'failed',
        'failed-lease-left',
        'failed-expired',
        'released',
      ]),
    ).toEqual({
      'held-stale': 'RELEASED',
      'held-fresh': 'HELD',
      'held-no-lease': 'RELEASED',
      'held-no-lease-fresh': 'HELD',
      'releasing-dead': 'RELEASED',
      'releasing-live': 'RELEASING',
      failed: 'RELEASED',
      'failed-lease-left': 'RELEASE_FAILED',
      'failed-expired': 'EXPIRED',
      released: 'RELEASED',
    });
    expect(await stored('held-stale')).toMatchObject({ releasedAt: NOW, releaseAttempts: 1, version: 3 });
    expect(await stored('held-stale')).not.toHaveProperty('sweepShard');
    expect(await stored('failed-expired')).not.toHaveProperty('sweepShard');

    const again = await sweep(run, deps());
    expect(again.summary.requested).toBe(0);
  });

  it('dry run: lists the candidates, changes nothing, and only reads', async () => {
    const items = [
      stale('a'),
      stale('b'),
      fresh('c'),
      ledgerItem({ lockId: 'd', status: 'RELEASE_FAILED', heartbeatAt: NOW - 3 * MINUTE }),
      ledgerItem({ lockId: 'e', status: 'RELEASE_FAILED', heartbeatAt: NOW - 60 * MINUTE }),
    ];
    await seed(items);
    const gateway = new FakeGateway();
    const [requests, writes] = [ledger.requests, ledger.writeUnits];
    const report = await sweep({ ...run, dryRun: true }, deps(ledger, gateway));

    expect(report.summary).toMatchObject({
      requested: 4,
      wouldRelease: 3,
      wouldClose: 1,
      released: 0,
      failed: 0,
    });
    expect(report.candidates.map((c) => c.lockId).sort()).toEqual(['a', 'b', 'd', 'e']);
    expect(gateway.calls).toEqual([]);
    // 16 index Queries and one BatchGetItem per shard that holds any of the 5 items; no write.
    const shards = new Set(items.map((i) => i.sweepShard)).size;
    expect(ledger.requests - requests).toBe(SWEEP_SHARDS + shards);
    expect(ledger.writeUnits - writes).toBe(0);
    for (const item of items) expect(await stored(item.lockId)).toEqual(item);
  });

  it('the race: a holder that heart-beats between the read and the claim keeps its lock', async () => {
    await seed([stale('kept', { holder: 'w-1' }), stale('other')]);
    const racing = new ScriptedSweepLedger(ledger);
    racing.afterRead = async () => {
      clock.time += SECOND;
      await newLedger().recordHeartbeat('kept', 'w-1', 120); // the holder, meanwhile
    };
    const gateway = new FakeGateway();
    const report = await sweep(run, deps(racing, gateway));

    expect(report.summary).toMatchObject({ requested: 2, released: 1, failed: 0, skipped: 1 });
    expect(report.results.map((r) => r.lockId)).toEqual(['other']);
    expect(report.candidates.find((c) => c.lockId === 'kept')?.skipped).toBeDefined();
    expect(gateway.calls.map((c) => c.lockId)).toEqual(['other']);
    expect(await stored('kept')).toMatchObject({ status: 'HELD', heartbeatAt: NOW + SECOND, version: 2 });
  });

  it('a failed release is RELEASE_FAILED with the holder’s heartbeat; retried each run, then closed as EXPIRED', async () => {
    await seed([stale('a')]);
    const first = await sweep(run, deps(ledger, new FakeGateway(unavailable)));
    expect(first.results[0]).toMatchObject({ outcome: 'failed', attempts: 4 });
    expect(await stored('a')).toMatchObject({
      status: 'RELEASE_FAILED',
      heartbeatAt: NOW - 3 * MINUTE,
      leaseSeconds: 120,
      releaseAttempts: 4,
      lastError: 'retryable: unavailable',
      version: 3,
    });

    clock.time = NOW + MINUTE;
    const second = await sweep(run, deps(ledger, new FakeGateway(unavailable)));
    expect(second.candidates[0]).toMatchObject({
      lockId: 'a',
      reason: 'release failed before: retryable: unavailable',
    });
    expect(await stored('a')).toMatchObject({
      status: 'RELEASE_FAILED',
      releaseAttempts: 8,
      heartbeatAt: NOW - 3 * MINUTE,
    });

    // Certainly expired: heartbeat (NOW − 180 s) + 120 s + 30 s + 600 s + 10 s = NOW + 580 s.
    clock.time = NOW + 580 * SECOND;
    expect((await sweep(run, deps(ledger, new FakeGateway(unavailable)))).summary.closedExpired).toBe(0);
    clock.time = NOW + 581 * SECOND;
    const gateway = new FakeGateway();
    const last = await sweep(run, deps(ledger, gateway));
    expect(last.summary).toMatchObject({ requested: 1, closedExpired: 1, released: 0 });
    expect(gateway.calls).toEqual([]);
    expect(await stored('a')).toMatchObject({
      status: 'EXPIRED',
      expiresAt: Math.floor((NOW + 581 * SECOND) / 1000) + 7 * 86_400,
    });
  });

  it('two overlapping sweeps release each lock once', async () => {
    const items = manyItems(60, 'l', (lockId) => stale(lockId));
    await seed(items);
    const gateway = new FakeGateway();
    const [a, b] = await Promise.all([
      sweep(run, deps(newLedger(), gateway)),
      sweep(run, deps(newLedger(), gateway)),
    ]);

    expect(gateway.calls).toHaveLength(60);
    expect(new Set(gateway.calls.map((c) => c.lockId)).size).toBe(60);
    expect(a.summary.released + b.summary.released).toBe(60);
    expect(a.summary.skipped + b.summary.skipped).toBe(60);
    expect(a.summary.failed + b.summary.failed).toBe(0);
    expect(Object.values(await statuses(items.map((i) => i.lockId))).every((s) => s === 'RELEASED')).toBe(
      true,
    );
  });

  it('a sweep that died after claiming: its claims are taken again after the claim lease + skew', async () => {
    await seed([stale('a')]);
    // The dead sweep: claimed with 90 s of its invocation left, then vanished.
    const [read] = await (async () => {
      const found: LedgerItem[] = [];
      for await (const page of ledger.openItems()) found.push(...page);
      return found;
    })();
    expect(await ledger.claim(read!, 90)).toBeDefined();

    clock.time = NOW + 100 * SECOND;
    expect((await sweep(run, deps())).candidates).toEqual([]);
    clock.time = NOW + 100 * SECOND + 1;
    const report = await sweep(run, deps());
    expect(report.summary).toMatchObject({ requested: 1, released: 1 });
    expect(await stored('a')).toMatchObject({ status: 'RELEASED' });
  });

  it('stops starting work before the deadline and leaves nothing RELEASING; the next run finishes', async () => {
    const items = manyItems(10, 'l', (lockId) => stale(lockId));
    await seed(items);
    const deadline = NOW + 20_000;
    const slow = new FakeGateway(() => {
      clock.time += 4000; // each attempt takes 4 s
      return { ok: true, outcome: 'released' };
    });
    const report = await sweep(run, {
      ...deps(ledger, slow, () => deadline - clock.time),
      options: { ...options, concurrency: 1 },
    });
    // 5 s + 1 s + 0.5 s must be left for an attempt: they start at 0, 4, 8 and 12 s.
    expect(report.summary).toMatchObject({ requested: 10, released: 4, failed: 6 });
    expect(report.results.filter((r) => r.error?.kind === 'deadline')).toHaveLength(6);
    const after = await statuses(items.map((i) => i.lockId));
    expect(Object.values(after).filter((s) => s === 'RELEASED')).toHaveLength(4);
    expect(Object.values(after).filter((s) => s === 'RELEASE_FAILED')).toHaveLength(6);

    const next = await sweep(run, deps());
    expect(next.summary).toMatchObject({ requested: 6, released: 6 });
  });

  it('claims nothing when too little time is left', async () => {
    await seed([stale('a')]);
    const report = await sweep(
      run,
      deps(ledger, new FakeGateway(), () => 6500),
    );
    expect(report.results[0]).toMatchObject({ outcome: 'failed', attempts: 0, error: { kind: 'deadline' } });
    expect(await stored('a')).toEqual(stale('a'));
  });

  it('every stale lock over many pages is released once', async () => {
    ledger = new DynamoLedger({
      tableName: dynamo.tableName,
      calls: httpDynamoCallsFor(dynamo.client),
      now: clock.now,
      pageSize: 10,
    });
    await seed([
      ...manyItems(250, 's', (lockId) => stale(lockId)),
      ...manyItems(50, 'f', (lockId) => fresh(lockId)),
    ]);
    const gateway = new FakeGateway();
    const report = await sweep(run, deps(ledger, gateway));
    expect(report.summary).toMatchObject({ requested: 250, released: 250, failed: 0, skipped: 0 });
    expect(new Set(gateway.calls.map((c) => c.lockId)).size).toBe(250);
    expect(gateway.calls).toHaveLength(250);
    expect((await sweep(run, deps())).summary.requested).toBe(0);
  });

  it('limit caps one run', async () => {
    await seed(manyItems(30, 's', (lockId) => stale(lockId)));
    const report = await sweep({ ...run, limit: 12 }, deps());
    expect(report.summary).toMatchObject({ requested: 12, released: 12 });
    expect((await sweep(run, deps())).summary.requested).toBe(18);
  });
});

describe('DynamoDB requests per sweep', () => {
  /**
   * A sweep over N open items of which k are stale costs
   *   Σ over the 16 shards of (⌊n_s / 1000⌋ + 1) index Queries (keys only; one page holds 1,000 keys)
   * + Σ over the shards of ⌈n_s / 100⌉ BatchGetItems (100 keys each)
   * + 2k writes (a claim and an outcome per stale lock),
   * where n_s is the number of open items in shard s: about 16 + N/100 + 2k, at most 32 + N/100 + 2k.
   */
  function expected(items: LedgerItem[], staleCount: number): number {
    const perShard = new Map<string, number>();
    for (const item of items) perShard.set(item.sweepShard!, (perShard.get(item.sweepShard!) ?? 0) + 1);
    let requests = 2 * staleCount;
    for (let s = 0; s < SWEEP_SHARDS; s += 1) {
      const n = perShard.get(String(s)) ?? 0;
      requests += Math.floor(n / 1000) + 1 + Math.ceil(n / 100);
    }
    return requests;
  }

  async function sweepOf(total: number, staleCount: number) {
    const items = [
      ...manyItems(staleCount, 'stale', (lockId) => stale(lockId)),
      ...manyItems(total - staleCount, 'fresh', (lockId) => fresh(lockId)),
    ];
    expect(items.every((i) => i.sweepShard === shardOf(i.lockId))).toBe(true);
    await seed(items);
    const [requests, reads, writes] = [ledger.requests, ledger.readUnits, ledger.writeUnits];
    const startedAt = performance.now();
    const report = await sweep(run, deps());
    const ms = performance.now() - startedAt;
    expect(report.summary.released).toBe(staleCount);
    return {
      requests: ledger.requests - requests,
      readUnits: ledger.readUnits - reads,
      writeUnits: ledger.writeUnits - writes,
      ms,
      expected: expected(items, staleCount),
    };
  }

  it.each([200, 2000])(
    'grows with the open set read once and with the stale count: %i open items, 20 stale',
    async (total) => {
      const measured = await sweepOf(total, 20);
      expect(measured.requests).toBe(measured.expected);
      expect(measured.requests).toBeLessThanOrEqual(32 + Math.ceil(total / 100) + 40);
      expect(measured.writeUnits).toBe(40);
    },
  );

  it('measures 10,000 open items with 100 stale', async () => {
    const measured = await sweepOf(10_000, 100);
    console.log(
      `sweep over 10,000 open items, 100 stale: ${measured.requests} requests, ${measured.readUnits} RRU, ` +
        `${measured.writeUnits} WU (table), ${Math.round(measured.ms)} ms on dynalite`,
    );
    expect(measured.requests).toBe(measured.expected);
    expect(measured.readUnits).toBeLessThan(0.6 * 10_000);
  }, 120_000);
});
