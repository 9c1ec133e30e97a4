import { describe, expect, it } from 'vitest';
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from '../../src/core/engine';
import type { AttemptOutcome } from '../../src/core/model';
import {
  MAX_SWEEP_LIMIT,
  parseSweepEvent,
  sweep,
  SweepEventError,
  type LedgerItem,
  type SweepInput,
} from '../../src/core/sweep';
import { FakeClock, FakeGateway, seededRandom } from '../helpers/fakes';
import { ledgerItem, MemorySweepLedger, MINUTE, NOW } from '../helpers/ledger-fakes';

const options: EngineOptions = { ...DEFAULT_ENGINE_OPTIONS };
const run: SweepInput = { dryRun: false, staleAfterSeconds: 900, limit: 500 };

const stale = (lockId: string, extra: Partial<LedgerItem> = {}) =>
  ledgerItem({ lockId, heartbeatAt: NOW - 21 * MINUTE, ...extra });
const fresh = (lockId: string) => ledgerItem({ lockId, heartbeatAt: NOW - MINUTE });

function setup(items: LedgerItem[], gateway = new FakeGateway(), remainingMs = () => 300_000) {
  const clock = new FakeClock(NOW);
  const ledger = new MemorySweepLedger(items, clock.now);
  const deps = { ledger, engine: { gateway, clock, random: seededRandom(7), remainingMs }, options };
  return { ledger, gateway, clock, deps };
}

describe('sweep', () => {
  it('releases stale HELD, dead RELEASING and RELEASE_FAILED items and leaves fresh ones alone', async () => {
    const { ledger, gateway, deps } = setup([
      stale('held-stale'),
      fresh('held-fresh'),
      ledgerItem({ lockId: 'releasing-dead', status: 'RELEASING', heartbeatAt: NOW - 1000_000 }),
      ledgerItem({ lockId: 'releasing-live', status: 'RELEASING', heartbeatAt: NOW - 10_000 }),
      ledgerItem({
        lockId: 'failed',
        status: 'RELEASE_FAILED',
        heartbeatAt: NOW,
        lastError: 'retryable: 503',
      }),
      ledgerItem({ lockId: 'done', status: 'RELEASED', heartbeatAt: NOW - 99 * MINUTE }),
    ]);
    const report = await sweep(run, deps);

    expect(report.candidates).toEqual([
      expect.objectContaining({
        lockId: 'held-stale',
        status: 'HELD',
        reason: 'heartbeat 1260 s old (stale after 900 s)',
      }),
      expect.objectContaining({
        lockId: 'releasing-dead',
        reason: 'claimed by a sweep that stopped 1000 s ago',
      }),
      expect.objectContaining({ lockId: 'failed', reason: 'release failed before: retryable: 503' }),
    ]);
    expect(report.summary).toMatchObject({ requested: 3, released: 3, failed: 0, skipped: 0, duplicates: 0 });
    expect(report.results.map((r) => [r.lockId, r.outcome])).toEqual([
      ['held-stale', 'released'],
      ['releasing-dead', 'released'],
      ['failed', 'released'],
    ]);
    expect(gateway.calls.map((c) => c.lockId).sort()).toEqual(['failed', 'held-stale', 'releasing-dead']);
    expect(ledger.claims.sort()).toEqual(['failed', 'held-stale', 'releasing-dead']);
    expect(ledger.recorded).toHaveLength(3);
    expect(ledger.items.get('held-fresh')?.status).toBe('HELD');
  });

  it('dry run: lists the candidates, claims and releases nothing', async () => {
    const { ledger, gateway, deps } = setup([stale('a'), stale('b'), fresh('c')]);
    const report = await sweep({ ...run, dryRun: true }, deps);
    expect(report.summary).toMatchObject({
      requested: 2,
      wouldRelease: 2,
      released: 0,
      failed: 0,
      skipped: 0,
    });
    expect(report.results.map((r) => r.outcome)).toEqual(['wouldRelease', 'wouldRelease']);
    expect(report.candidates.map((c) => c.lockId)).toEqual(['a', 'b']);
    expect(gateway.calls).toEqual([]);
    expect(ledger.claims).toEqual([]);
    expect(ledger.recorded).toEqual([]);
  });

  it('a lost claim (the holder heart-beat after the query) is skipped: neither released nor failed', async () => {
    const { ledger, gateway, deps } = setup([stale('kept'), stale('gone')]);
    ledger.afterFind = () => ledger.heartbeat('kept');
    const report = await sweep(run, deps);
    expect(report.summary).toMatchObject({ requested: 2, released: 1, failed: 0, skipped: 1 });
    expect(report.results.map((r) => r.lockId)).toEqual(['gone']);
    expect(report.candidates.find((c) => c.lockId === 'kept')?.skipped).toMatch(/heart-beat/);
    expect(gateway.calls.map((c) => c.lockId)).toEqual(['gone']);
    expect(ledger.items.get('kept')).toMatchObject({ status: 'HELD', heartbeatAt: NOW });
  });

  it('records failures through the claim recorder with the attempts made', async () => {
    const gateway = new FakeGateway((): AttemptOutcome => ({
      ok: false,
      error: { kind: 'permanent', httpStatus: 400, message: 'bad' },
    }));
    const { ledger, deps } = setup([stale('a')], gateway);
    const report = await sweep(run, deps);
    expect(report.summary).toMatchObject({ requested: 1, released: 0, failed: 1 });
    expect(ledger.recorded).toEqual([
      expect.objectContaining({ lockId: 'a', outcome: 'failed', attempts: 1 }),
    ]);
    expect(ledger.items.get('a')?.status).toBe('RELEASE_FAILED');
  });

  it('reports ledger items with unusable IDs as invalid-input, without claiming them', async () => {
    const { ledger, gateway, deps } = setup([stale('bad id'), stale('good')]);
    const report = await sweep(run, deps);
    expect(report.results).toMatchObject([
      { lockId: 'bad?id', outcome: 'failed', error: { kind: 'invalid-input' } },
      { lockId: 'good', outcome: 'released' },
    ]);
    expect(ledger.claims).toEqual(['good']);
    expect(gateway.calls.map((c) => c.lockId)).toEqual(['good']);
  });

  it('claims nothing when no release could follow before the deadline, and says so per lock', async () => {
    const { ledger, gateway, deps } = setup([stale('a'), stale('b')], new FakeGateway(), () => 6000);
    const report = await sweep(run, deps);
    expect(report.summary).toMatchObject({ requested: 2, failed: 2, released: 0 });
    expect(report.results.every((r) => r.error?.kind === 'deadline' && r.attempts === 0)).toBe(true);
    expect(ledger.claims).toEqual([]);
    expect(gateway.calls).toEqual([]);
    expect(ledger.items.get('a')?.status).toBe('HELD');
  });

  it('stops claiming when time runs short; the claimed locks are released, the rest left as they were', async () => {
    let remaining = 8000;
    const { ledger, deps } = setup(
      [stale('a'), stale('b'), stale('c'), stale('d')],
      new FakeGateway(),
      () => remaining,
    );
    const claim = ledger.claim.bind(ledger);
    ledger.claim = async (item) => {
      remaining -= 500; // each claim takes 0.5 s of the remaining time
      return claim(item);
    };
    const report = await sweep(run, { ...deps, options: { ...options, concurrency: 1 } });
    // A claim needs 5 s + 1 s + 2 × 0.5 s = 7 s left: claims at 8, 7.5 and 7 s; at 6.5 s d is not claimed.
    expect(ledger.claims).toEqual(['a', 'b', 'c']);
    expect(report.results.map((r) => r.outcome)).toEqual(['released', 'released', 'released', 'failed']);
    expect(report.results[3]?.error?.kind).toBe('deadline');
    expect(report.results[3]?.error?.message).toMatch(/not claimed/);
    expect(ledger.items.get('d')?.status).toBe('HELD');
  });

  it('a claim the ledger cannot write fails that lock only', async () => {
    const { ledger, gateway, deps } = setup([stale('a'), stale('b')]);
    ledger.claimError = (id) => (id === 'a' ? new Error('throttled') : undefined);
    const report = await sweep(run, deps);
    expect(report.results[0]).toMatchObject({ lockId: 'a', outcome: 'failed', error: { kind: 'retryable' } });
    expect(report.results[0]?.error?.message).toMatch(/could not claim.*throttled/);
    expect(report.results[1]).toMatchObject({ lockId: 'b', outcome: 'released' });
    expect(gateway.calls.map((c) => c.lockId)).toEqual(['b']);
  });

  it('limit caps the candidates of one run', async () => {
    const { gateway, deps } = setup([stale('a'), stale('b'), stale('c')]);
    const report = await sweep({ ...run, limit: 2 }, deps);
    expect(report.summary.requested).toBe(2);
    expect(gateway.calls).toHaveLength(2);
  });

  it('every candidate is accounted for exactly once', async () => {
    const items = Array.from({ length: 40 }, (_, i) => stale(`l-${i}`));
    const gateway = new FakeGateway((lock) =>
      Number(lock.lockId.slice(2)) % 3 === 0
        ? { ok: false, error: { kind: 'permanent', message: 'no' } }
        : { ok: true, outcome: Number(lock.lockId.slice(2)) % 3 === 1 ? 'released' : 'alreadyReleased' },
    );
    const { ledger, deps } = setup(items, gateway);
    ledger.afterFind = () => ['l-1', 'l-2', 'l-5'].forEach((id) => ledger.heartbeat(id));
    const { summary, results } = await sweep(run, deps);
    expect(summary.released + summary.alreadyReleased + summary.failed + summary.skipped).toBe(
      summary.requested,
    );
    expect(results.length + summary.skipped).toBe(40);
    expect(summary.skipped).toBe(3);
  });
});

describe('parseSweepEvent', () => {
  const defaults = { staleAfterSeconds: 900, limit: 500 };

  it('takes the defaults from a scheduled event, {}, or nothing at all', () => {
    const scheduled = {
      version: '0',
      id: '89d1a02d-5ec7-412e-82f5-13505f849b41',
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      time: '2025-01-01T00:00:00Z',
      resources: ['arn:aws:events:eu-west-1:123456789012:rule/sweep'],
      detail: {},
    };
    const expected = { dryRun: false, staleAfterSeconds: 900, limit: 500 };
    expect(parseSweepEvent(scheduled, defaults)).toEqual(expected);
    expect(parseSweepEvent({}, defaults)).toEqual(expected);
    expect(parseSweepEvent(undefined, defaults)).toEqual(expected);
    expect(parseSweepEvent(null, defaults)).toEqual(expected);
  });

  it('reads dryRun, staleAfterSeconds and limit of a direct invoke and ignores other fields', () => {
    expect(
      parseSweepEvent({ dryRun: true, staleAfterSeconds: 1200, limit: 50, other: 'x' }, defaults),
    ).toEqual({
      dryRun: true,
      staleAfterSeconds: 1200,
      limit: 50,
    });
    expect(parseSweepEvent({ limit: MAX_SWEEP_LIMIT }, defaults).limit).toBe(MAX_SWEEP_LIMIT);
  });

  it('refuses wrong types and ranges, naming every problem', () => {
    const fail = (event: unknown) => {
      try {
        parseSweepEvent(event, defaults);
      } catch (error) {
        expect(error).toBeInstanceOf(SweepEventError);
        return (error as SweepEventError).problems;
      }
      throw new Error('expected a SweepEventError');
    };
    expect(fail({ dryRun: 'true', staleAfterSeconds: '900', limit: 0 })).toEqual([
      'dryRun must be true or false, got "true"',
      'staleAfterSeconds must be a whole number from 60 to 604800, got "900"',
      'limit must be a whole number from 1 to 10000, got 0',
    ]);
    expect(fail({ limit: MAX_SWEEP_LIMIT + 1 })).toHaveLength(1);
    expect(fail({ staleAfterSeconds: 1.5 })).toHaveLength(1);
    expect(fail({ staleAfterSeconds: 30 })).toHaveLength(1);
    expect(fail([])).toEqual(['the event must be a JSON object, got an array']);
    expect(fail('{"dryRun":true}')).toEqual(['the event must be a JSON object, got string']);
  });
});
