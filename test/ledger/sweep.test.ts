/** The sweep use case against the DynamoDB ledger on dynalite, with a fake KooDrive gateway. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startDynalite, type LocalDynamo } from '../../dev/dynalite';
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from '../../src/core/engine';
import type { AttemptOutcome } from '../../src/core/model';
import { sweep, type SweepInput, type SweepLedger } from '../../src/core/sweep';
import { DynamoLedger, type LedgerItem } from '../../src/ledger';
import { FakeClock, FakeGateway, seededRandom } from '../helpers/fakes';
import { ledgerItem, manyItems, MINUTE, NOW, seedItems } from '../helpers/ledger-fakes';

const options: EngineOptions = { ...DEFAULT_ENGINE_OPTIONS };
const run: SweepInput = { dryRun: false, staleAfterSeconds: 900, limit: 10_000 };

const stale = (lockId: string, extra: Partial<LedgerItem> = {}) =>
  ledgerItem({ lockId, heartbeatAt: NOW - 20 * MINUTE, ...extra });
const fresh = (lockId: string) => ledgerItem({ lockId, heartbeatAt: NOW - 2 * MINUTE });
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
  return new DynamoLedger({ tableName: dynamo.tableName, client: dynamo.client, now: clock.now });
}

function deps(sweepLedger: SweepLedger = ledger, gateway = new FakeGateway(), remainingMs = () => 600_000) {
  return { ledger: sweepLedger, engine: { gateway, clock, random: seededRandom(3), remainingMs }, options };
}

const seed = (items: LedgerItem[]) => seedItems(dynamo.client, dynamo.tableName, items);
const statuses = async (ids: string[]): Promise<Record<string, string | undefined>> =>
  Object.fromEntries(
    await Promise.all(
      ids.map(async (id): Promise<[string, string | undefined]> => [id, (await ledger.get(id))?.status]),
    ),
  );

describe('sweep over the DynamoDB ledger', () => {
  it('releases exactly the stale, the failed and the abandoned claims, and marks them RELEASED', async () => {
    await seed([
      stale('held-stale'),
      fresh('held-fresh'),
      ledgerItem({ lockId: 'releasing-dead', status: 'RELEASING', heartbeatAt: NOW - 16 * MINUTE }),
      ledgerItem({ lockId: 'releasing-live', status: 'RELEASING', heartbeatAt: NOW - MINUTE }),
      ledgerItem({ lockId: 'failed', status: 'RELEASE_FAILED', heartbeatAt: NOW, lastError: 'retryable: x' }),
      ledgerItem({ lockId: 'released', status: 'RELEASED', heartbeatAt: NOW - 60 * MINUTE }),
    ]);
    const gateway = new FakeGateway();
    const report = await sweep(run, deps(ledger, gateway));

    expect(report.summary).toMatchObject({ requested: 3, released: 3, failed: 0, skipped: 0 });
    expect(report.candidates.map((c) => [c.lockId, c.reason])).toEqual([
      ['held-stale', 'heartbeat 1200 s old (stale after 900 s)'],
      ['releasing-dead', 'claimed by a sweep that stopped 960 s ago'],
      ['failed', 'release failed before: retryable: x'],
    ]);
    expect(gateway.calls.map((c) => c.lockId).sort()).toEqual(['failed', 'held-stale', 'releasing-dead']);
    expect(
      await statuses(['held-stale', 'held-fresh', 'releasing-dead', 'releasing-live', 'failed', 'released']),
    ).toEqual({
      'held-stale': 'RELEASED',
      'held-fresh': 'HELD',
      'releasing-dead': 'RELEASED',
      'releasing-live': 'RELEASING',
      failed: 'RELEASED',
      released: 'RELEASED',
    });
    expect(await ledger.get('held-stale')).toMatchObject({ releasedAt: NOW, releaseAttempts: 1, version: 3 });

    const again = await sweep(run, deps());
    expect(again.summary.requested).toBe(0);
  });

  it('dry run: lists the candidates and changes nothing', async () => {
    const items = [stale('a'), stale('b'), fresh('c'), ledgerItem({ lockId: 'd', status: 'RELEASE_FAILED' })];
    await seed(items);
    const gateway = new FakeGateway();
    const before = ledger.requests;
    const report = await sweep({ ...run, dryRun: true }, deps(ledger, gateway));

    expect(report.summary).toMatchObject({ requested: 3, wouldRelease: 3, released: 0, failed: 0 });
    expect(report.candidates.map((c) => c.lockId).sort()).toEqual(['a', 'b', 'd']);
    expect(gateway.calls).toEqual([]);
    expect(ledger.requests - before).toBe(3); // the three queries, no write
    for (const item of items) expect(await ledger.get(item.lockId)).toEqual(item);
  });

  it('the race: a holder that heart-beats between the query and the claim keeps its lock', async () => {
    await seed([stale('kept'), stale('other')]);
    const racing: SweepLedger = {
      findCandidates: async (query) => {
        const found = await ledger.findCandidates(query);
        await newLedger().recordHeartbeat('kept'); // the holder, meanwhile
        return found;
      },
      claim: (item) => ledger.claim(item),
      claimRecorder: (claimed) => ledger.claimRecorder(claimed),
    };
    const gateway = new FakeGateway();
    const report = await sweep(run, deps(racing, gateway));

    expect(report.summary).toMatchObject({ requested: 2, released: 1, failed: 0, skipped: 1 });
    expect(report.results.map((r) => r.lockId)).toEqual(['other']);
    expect(report.candidates.find((c) => c.lockId === 'kept')?.skipped).toBeDefined();
    expect(gateway.calls.map((c) => c.lockId)).toEqual(['other']);
    expect(await ledger.get('kept')).toMatchObject({ status: 'HELD', heartbeatAt: NOW, version: 2 });
  });

  it('records a failed release as RELEASE_FAILED, and the next sweep retries it', async () => {
    await seed([stale('a', { releaseAttempts: 0 })]);
    const first = await sweep(run, deps(ledger, new FakeGateway(unavailable)));
    expect(first.results[0]).toMatchObject({ outcome: 'failed', attempts: 4 });
    expect(await ledger.get('a')).toMatchObject({
      status: 'RELEASE_FAILED',
      releaseAttempts: 4,
      lastError: 'retryable: unavailable',
    });

    const second = await sweep(run, deps());
    expect(second.candidates[0]).toMatchObject({
      lockId: 'a',
      reason: 'release failed before: retryable: unavailable',
    });
    expect(second.summary.released).toBe(1);
    expect(await ledger.get('a')).toMatchObject({ status: 'RELEASED', releaseAttempts: 5 });
  });

  it('two overlapping sweeps release each lock once', async () => {
    const ids = manyItems(60, 'l', (lockId) => stale(lockId));
    await seed(ids);
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
    expect(Object.values(await statuses(ids.map((i) => i.lockId))).every((s) => s === 'RELEASED')).toBe(true);
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
    expect(await ledger.get('a')).toEqual(stale('a'));
  });

  it('pages beyond one page: a dry run over 2,600 stale locks lists them all', async () => {
    await seed([
      ...manyItems(2600, 's', (lockId) => stale(lockId)),
      ...manyItems(100, 'f', (lockId) => fresh(lockId)),
    ]);
    const before = ledger.requests;
    const report = await sweep({ ...run, dryRun: true }, deps());
    expect(report.summary).toMatchObject({ requested: 2600, wouldRelease: 2600 });
    expect(new Set(report.candidates.map((c) => c.lockId)).size).toBe(2600);
    expect(ledger.requests - before).toBe(3 + 1 + 1); // HELD in three pages of 1,000, then two empty queries
  });

  it('pages beyond one page: every stale lock over several pages is released once', async () => {
    // A small page size keeps this fast: dynalite needs ~1.5 ms per write, and each lock takes two.
    ledger = new DynamoLedger({
      tableName: dynamo.tableName,
      client: dynamo.client,
      now: clock.now,
      pageSize: 100,
    });
    await seed([
      ...manyItems(250, 's', (lockId) => stale(lockId)),
      ...manyItems(50, 'f', (lockId) => fresh(lockId)),
    ]);
    const gateway = new FakeGateway();
    const report = await sweep(run, deps(ledger, gateway));
    expect(report.summary).toMatchObject({ requested: 250, released: 250, failed: 0, skipped: 0 });
    expect(gateway.calls).toHaveLength(250);
    expect(new Set(gateway.calls.map((c) => c.lockId)).size).toBe(250);
    expect((await ledger.findCandidates({ staleBefore: NOW - 15 * MINUTE, limit: 10_000 })).items).toEqual(
      [],
    );
  });

  it('limit caps one run', async () => {
    await seed(manyItems(30, 's', (lockId) => stale(lockId)));
    const report = await sweep({ ...run, limit: 12 }, deps());
    expect(report.summary).toMatchObject({ requested: 12, released: 12 });
    expect((await sweep(run, deps())).summary.requested).toBe(18);
  });
});

describe('DynamoDB requests per sweep', () => {
  /** Seeds `total` items of which `staleCount` are stale and the rest fresh, sweeps, counts the requests. */
  async function requestsFor(total: number, staleCount: number): Promise<number> {
    await seed([
      ...manyItems(staleCount, 'stale', (lockId) => stale(lockId)),
      ...manyItems(total - staleCount, 'fresh', (lockId) => fresh(lockId)),
    ]);
    const before = ledger.requests;
    const report = await sweep(run, deps());
    expect(report.summary.released).toBe(staleCount);
    return ledger.requests - before;
  }

  it.each([200, 2000])(
    'grows with the stale count, not the table size: %i items with 20 stale',
    async (total) => {
      // 3 queries (HELD, RELEASING, RELEASE_FAILED) + one claim and one outcome write per stale lock.
      expect(await requestsFor(total, 20)).toBe(3 + 2 * 20);
    },
  );

  it('measures 10,000 items with 100 stale', async () => {
    const requests = await requestsFor(10_000, 100);
    console.log(`DynamoDB requests for a sweep over 10,000 items with 100 stale: ${requests}`);
    expect(requests).toBe(3 + 2 * 100);
  }, 60_000);
});
