/**
 * The lease rules (README, "Leases and the promise"), checked against numbers worked out by hand from the rules:
 * stale = heartbeat + lease + skew (or + STALE_AFTER_SECONDS without a lease), certainly expired = heartbeat + lease
 * + KooDrive's 600 s + skew, safe time = lease − skew − margin (margin 5% of the lease, 0.25–2 s).
 */
import { describe, expect, it } from 'vitest';
import {
  certainlyExpiredAt,
  FINAL_STATUSES,
  holderTiming,
  judge,
  KOODRIVE_LOCK_SECONDS,
  MAX_KOODRIVE_REQUEST_SECONDS,
  randomSweepShard,
  staleAt,
  SWEEP_SHARDS,
  type LedgerItem,
  type LeasePolicy,
} from '../../src/core/lease';

const HB = 1_700_000_000_000; // a heartbeat, epoch ms
const policy: LeasePolicy = { staleAfterSeconds: 900, clockSkewSeconds: 10 };

function item(overrides: Partial<LedgerItem> = {}): LedgerItem {
  return {
    lockId: 'lock-1',
    userId: 'user-1',
    status: 'HELD',
    acquiredAt: HB - 60_000,
    heartbeatAt: HB,
    leaseSeconds: 120,
    releaseAttempts: 0,
    version: 3,
    sweepShard: '7',
    ...overrides,
  };
}

describe('constants', () => {
  it('KooDrive keeps a lock 10 minutes; the sweep index has 16 shards; RELEASED and EXPIRED are final', () => {
    expect(KOODRIVE_LOCK_SECONDS).toBe(600);
    expect(SWEEP_SHARDS).toBe(16);
    expect(FINAL_STATUSES).toEqual(['RELEASED', 'EXPIRED']);
  });
});

describe('staleAt', () => {
  it('is heartbeat + lease + skew: 120 s + 10 s after the heartbeat', () => {
    expect(staleAt({ heartbeatAt: HB, leaseSeconds: 120 }, policy)).toBe(HB + 130_000);
    expect(staleAt({ heartbeatAt: HB, leaseSeconds: 5 }, { ...policy, clockSkewSeconds: 0 })).toBe(HB + 5000);
  });

  it('without a lease of its own: heartbeat + STALE_AFTER_SECONDS (no skew added)', () => {
    expect(staleAt({ heartbeatAt: HB }, policy)).toBe(HB + 900_000);
    expect(staleAt({ heartbeatAt: HB }, { staleAfterSeconds: 60, clockSkewSeconds: 30 })).toBe(HB + 60_000);
  });
});

describe('certainlyExpiredAt', () => {
  it('is heartbeat + lease + the 30 s request bound + 600 s + skew', () => {
    expect(MAX_KOODRIVE_REQUEST_SECONDS).toBe(30);
    expect(certainlyExpiredAt({ heartbeatAt: HB, leaseSeconds: 120 }, policy)).toBe(HB + 760_000);
  });

  it('counts no lease when the item has none', () => {
    expect(certainlyExpiredAt({ heartbeatAt: HB }, policy)).toBe(HB + 640_000);
  });
});

describe('judge', () => {
  it('leaves a HELD item up to and at its stale time, releases it 1 ms later', () => {
    expect(judge(item(), HB + 130_000, policy)).toEqual({ action: 'leave' });
    expect(judge(item(), HB + 130_001, policy)).toEqual({
      action: 'release',
      reason: 'heartbeat 130 s old (lease 120 s + skew 10 s)',
    });
  });

  it('gives the heartbeat age in whole seconds, rounded down', () => {
    expect(judge(item(), HB + 200_999, policy)).toEqual({
      action: 'release',
      reason: 'heartbeat 200 s old (lease 120 s + skew 10 s)',
    });
  });

  it('judges an item without a lease by STALE_AFTER_SECONDS', () => {
    const noLease = item({ leaseSeconds: undefined });
    expect(judge(noLease, HB + 900_000, policy)).toEqual({ action: 'leave' });
    expect(judge(noLease, HB + 900_001, policy)).toEqual({
      action: 'release',
      reason: 'heartbeat 900 s old (stale after 900 s without a lease)',
    });
  });

  it('releases a RELEASING item whose sweep stopped (its claim lease ran out)', () => {
    const claimed = item({ status: 'RELEASING', leaseSeconds: 50 });
    expect(judge(claimed, HB + 60_000, policy)).toEqual({ action: 'leave' });
    expect(judge(claimed, HB + 61_000, policy)).toEqual({
      action: 'release',
      reason: 'claimed by a sweep that stopped 61 s ago (lease 50 s + skew 10 s)',
    });
  });

  it('retries a RELEASE_FAILED item once its last holder’s lease ran out, naming the last error, until its KooDrive lock certainly expired', () => {
    const failed = item({ status: 'RELEASE_FAILED', lastError: 'retryable: HTTP 503' });
    // heartbeat + lease 120 s + skew 10 s: up to that instant the last holder's lease is live
    expect(judge(failed, HB + 1, policy)).toEqual({ action: 'leave' });
    expect(judge(failed, HB + 130_000, policy)).toEqual({ action: 'leave' });
    expect(judge(failed, HB + 130_001, policy)).toEqual({
      action: 'release',
      reason: 'release failed before: retryable: HTTP 503',
    });
    expect(judge(item({ status: 'RELEASE_FAILED' }), HB + 130_001, policy)).toEqual({
      action: 'release',
      reason: 'release failed before: no error recorded',
    });
    // heartbeat + 120 + 30 + 600 + 10 s = HB + 760 s: at that instant not yet certain, 1 ms later closed
    expect(judge(failed, HB + 760_000, policy)).toMatchObject({ action: 'release' });
    expect(judge(failed, HB + 760_001, policy)).toEqual({
      action: 'close',
      reason: 'release failed and the KooDrive lock has certainly expired (heartbeat 760 s old)',
    });
  });

  it('retries a forced RELEASE_FAILED item at once, whatever its lease', () => {
    const forced = item({ status: 'RELEASE_FAILED', lastError: 'retryable: HTTP 503', forcedAt: HB });
    expect(judge(forced, HB + 1, policy)).toEqual({
      action: 'release',
      reason: 'release failed before: retryable: HTTP 503 (forced)',
    });
    expect(judge(forced, HB + 760_001, policy)).toMatchObject({ action: 'close' });
  });

  it('leaves final items alone, however old', () => {
    for (const status of ['RELEASED', 'EXPIRED'] as const) {
      expect(judge(item({ status }), HB + 10_000_000, policy)).toEqual({ action: 'leave' });
    }
  });
});

describe('holderTiming', () => {
  it('defaults: a 120 s lease, heart-beating every 40 s, 10 s skew, 2 s margin, 108 s safe', () => {
    expect(holderTiming({})).toEqual({
      leaseMs: 120_000,
      heartbeatMs: 40_000,
      skewMs: 10_000,
      marginMs: 2000,
      safeMs: 108_000,
    });
  });

  it('margin is 5% of the lease, at least 0.25 s and at most 2 s', () => {
    expect(holderTiming({ leaseSeconds: 30 }).marginMs).toBe(1500);
    expect(holderTiming({ leaseSeconds: 30 }).safeMs).toBe(18_500);
    expect(holderTiming({ leaseSeconds: 5, clockSkewSeconds: 0 })).toEqual({
      leaseMs: 5000,
      heartbeatMs: 1667,
      skewMs: 0,
      marginMs: 250,
      safeMs: 4750,
    });
    expect(holderTiming({ leaseSeconds: 10, clockSkewSeconds: 1 })).toEqual({
      leaseMs: 10_000,
      heartbeatMs: 3333,
      skewMs: 1000,
      marginMs: 500,
      safeMs: 8500,
    });
    expect(holderTiming({ leaseSeconds: 600 }).marginMs).toBe(2000);
  });

  it('takes the heartbeat period and skew it is given', () => {
    expect(holderTiming({ leaseSeconds: 60, heartbeatSeconds: 15, clockSkewSeconds: 2.5 })).toEqual({
      leaseMs: 60_000,
      heartbeatMs: 15_000,
      skewMs: 2500,
      marginMs: 2000,
      safeMs: 55_500,
    });
  });

  it('accepts leases from 5 to 600 s and refuses others, naming the bounds', () => {
    expect(holderTiming({ leaseSeconds: 600 }).leaseMs).toBe(600_000);
    expect(() => holderTiming({ leaseSeconds: 4.9 })).toThrow(
      new RangeError('leaseSeconds must be from 5 to 600, got 4.9'),
    );
    expect(() => holderTiming({ leaseSeconds: 601 })).toThrow(
      new RangeError('leaseSeconds must be from 5 to 600, got 601'),
    );
    expect(() => holderTiming({ leaseSeconds: Number.NaN })).toThrow(RangeError);
  });

  it('refuses a negative or missing-number skew', () => {
    expect(holderTiming({ clockSkewSeconds: 0 }).skewMs).toBe(0);
    expect(() => holderTiming({ clockSkewSeconds: -1 })).toThrow(
      new RangeError('clockSkewSeconds must be 0 or more, got -1'),
    );
    expect(() => holderTiming({ clockSkewSeconds: Number.NaN })).toThrow(RangeError);
  });

  it('refuses a safe time that does not outlast the heartbeat period, naming the numbers', () => {
    // 120 s lease − 10 s skew − 2 s margin = 108 s: a 108 s heartbeat is one too many
    expect(() => holderTiming({ heartbeatSeconds: 108 })).toThrow(
      new RangeError(
        'a 120 s lease leaves a safe time of 108 s (lease − clock skew 10 s − margin 2 s), which must be longer than ' +
          'the heartbeat period of 108 s: lengthen the lease, shorten heartbeatSeconds or lower clockSkewSeconds',
      ),
    );
    expect(holderTiming({ heartbeatSeconds: 107.999 }).heartbeatMs).toBe(107_999);
    // 5 s lease with the default 10 s skew: 5 − 10 − 0.25 = −5.25 s
    expect(() => holderTiming({ leaseSeconds: 5 })).toThrow(/safe time of -5.25 s/);
    expect(() => holderTiming({ heartbeatSeconds: 0 })).toThrow(/heartbeat period of 0 s/);
    expect(() => holderTiming({ heartbeatSeconds: -1 })).toThrow(RangeError);
  });
});

describe('randomSweepShard', () => {
  it('maps [0, 1) onto "0" … "15" evenly', () => {
    expect(randomSweepShard(() => 0)).toBe('0');
    expect(randomSweepShard(() => 0.0624)).toBe('0');
    expect(randomSweepShard(() => 0.0625)).toBe('1');
    expect(randomSweepShard(() => 0.5)).toBe('8');
    expect(randomSweepShard(() => 0.999_999)).toBe('15');
  });

  it('never answers "16", even for a random source that returns 1', () => {
    expect(randomSweepShard(() => 1)).toBe('15');
  });
});
