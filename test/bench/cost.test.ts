/** The cost model's arithmetic against a bill worked out by hand at the stated list prices. */
import { describe, expect, it } from 'vitest';
import { lifecycleBill, sqsReleaseBill, sweepMonthBill } from '../../dev/bench/cost';

describe('cost model', () => {
  it('prices a million SQS releases all in', () => {
    const b = sqsReleaseBill({
      releases: 1_000_000,
      batchSize: 10,
      memoryMb: 1024,
      cpuMsPerLock: 0.5,
      koodriveLatencyMs: 100,
      dynamoLatencyMs: 10,
      concurrency: 8,
      wuPerRelease: 1,
      ruPerRelease: 0,
      producersBatchSends: false,
      secretCacheSeconds: 300,
      containers: 5,
    });
    // 2 rounds × 100 + 10 + 0.5 × 10 × 1769 / 1024 (8.64) = 218.6 → 219 ms
    expect(b.invocations).toBe(100_000);
    expect(b.durationMsPerInvocation).toBe(219);
    expect(b.gbSeconds).toBeCloseTo(21_900, 6);
    expect(b.sqsRequests).toBe(1_200_000);
    // 4380 s of work over 5 containers, a read per 300 s each: 5 × 15
    expect(b.secretReads).toBe(75);
    // 21,900 × 0.0000133334 + 100,000 × 0.2e-6 + 1.2e6 × 0.4e-6 + 1e6 × 0.625e-6 + 75 × 5e-6
    expect(b.usd).toBeCloseTo(0.2920015 + 0.02 + 0.48 + 0.625 + 0.000375, 6);
  });

  it('prices a lifecycle and a month of sweeps', () => {
    expect(lifecycleBill(11, 0).usd).toBeCloseTo(11 * 0.625e-6, 12);
    const m = sweepMonthBill({
      sweeps: 43_200,
      openLocks: 2000,
      ruPerSweepPer1000: 506,
      msPerSweepPer1000: 100,
      fixedMsPerSweep: 50,
      memoryMb: 256,
      secretCacheSeconds: 300,
      heartbeatSeconds: 40,
      wuPerHeartbeat: 1,
    });
    // reads: 43,200 × 506 × 2 RRU; duration 43,200 × 0.25 s × 0.25 GB; 8,640 secret reads
    const expected =
      43_200 * 1012 * 0.125e-6 + 43_200 * 0.25 * 0.25 * 0.0000133334 + 43_200 * 0.2e-6 + 8640 * 5e-6;
    expect(m.usd).toBeCloseTo(expected, 6);
    // 2000 locks × 2,592,000 s / 40 s heartbeats × 1 WU
    expect(m.heartbeats.usd).toBeCloseTo(129_600_000 * 0.625e-6, 6);
  });
});
