/**
 * Client overhead: locks released per second of CPU at L=0 by the engine with the KooDrive client, against the
 * common way (global fetch, Promise.all over chunks, the same signer), in paired rounds of alternating order.
 */
import type { Harness } from '../harness';
import { median } from '../report';

export async function clientOverhead(h: Harness): Promise<void> {
  const { overheadN: n, overheadWarmup, overheadRounds, concurrency } = h.sizes;
  h.log(`client overhead: N=${n} at L=0, ${overheadRounds} round(s)`);
  await h.resetEmulator(0);
  const w = await h.worker(h.stackEnv());
  const locks = async (count: number) =>
    (await h.seed(count)).map((lockId) => ({ lockId, userId: h.userId }));
  try {
    await w.call('prepare');
    for (const impl of ['ours', 'baseline'] as const) {
      await w.call('overhead', impl, h.emulatorUrl, await locks(overheadWarmup), concurrency);
    }
    const perCore = { ours: [] as number[], baseline: [] as number[] };
    const wall = { ours: [] as number[], baseline: [] as number[] };
    const ratios: number[] = [];
    let emulatorCpuPerRequest = 0;
    for (let round = 0; round < overheadRounds; round++) {
      for (const impl of round % 2 === 0
        ? (['ours', 'baseline'] as const)
        : (['baseline', 'ours'] as const)) {
        const ids = await locks(n);
        const s0 = await h.stats();
        const run = await w.call('overhead', impl, h.emulatorUrl, ids, concurrency);
        const s1 = await h.stats();
        if (run.released !== n) throw new Error(`${impl} released ${run.released} of ${n}`);
        perCore[impl].push(n / (run.cpuMs / 1000));
        wall[impl].push(n / (run.ms / 1000));
        emulatorCpuPerRequest = (s1.cpuMs - s0.cpuMs) / (s1.requests - s0.requests);
      }
      ratios.push((perCore.ours[round] as number) / (perCore.baseline[round] as number));
    }
    const ours = median(perCore.ours);
    const baseline = median(perCore.baseline);
    const ratio = median(ratios);
    h.add('per-core', {
      what: `Client overhead: locks per second per CPU core, N=${n} at L=0, C=${concurrency}: ours (engine + KooDriveClient) vs fetch + Promise.all over chunks`,
      goal: '≥ 2 × baseline',
      measured: `${ratio.toFixed(2)} × (median of ${ratios.length} paired rounds: ${ratios.map((r) => r.toFixed(2)).join(', ')}; ours ${Math.round(ours)}/s per core = ${(1000 / ours).toFixed(3)} ms CPU per lock, baseline ${Math.round(baseline)}/s = ${(1000 / baseline).toFixed(3)} ms; wall ${Math.round(median(wall.ours))} vs ${Math.round(median(wall.baseline))} locks/s; emulator ${emulatorCpuPerRequest.toFixed(3)} ms CPU/request)`,
      value: ratio,
      ok: ratio >= 2,
    });
  } finally {
    await w.stop();
  }
}
