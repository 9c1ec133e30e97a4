/**
 * Memory: peak RSS of the packaged release function releasing the largest direct invoke in one fresh process
 * (ledger on, L=0, the V8 heap flags of a 128 MB Lambda), and the memorySize that gives it enough memory and CPU.
 */
import { execFileSync } from 'node:child_process';
import { deployed, runBundle } from '../bundle';
import { MB_PER_VCPU } from '../cost';
import { peakRss, type Harness } from '../harness';
import { ms } from '../report';

/** The most locks one direct invoke may name (MAX_LOCKS_PER_INVOKE's default, src/config.ts). */
const MAX_LOCKS_PER_INVOKE = 10_000;

export async function memory(h: Harness): Promise<void> {
  const { bundle } = await h.packaged();
  const n = h.sizes.memoryN;
  h.log(`memory: peak RSS releasing ${n} locks in one direct invoke`);
  // L=0 is the worst case: outcomes arrive faster than the ledger takes them.
  await h.resetEmulator(0);
  const run = await runBundle(bundle, {
    env: h.stackEnv(h.ledgerDb),
    events: [{ lockIds: await h.seed(n), userId: h.userId }],
    nodeArgs: h.heapFlags(128),
  });
  const inv = run.invocations[0];
  const peak = peakRss(run);
  const bareNodeMb =
    Number(
      execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.memoryUsage().rss))']),
    ) /
    2 ** 20;
  h.add('peak-rss', {
    what: `Peak RSS releasing ${n} locks in one direct invoke (packaged bundle, ledger on, L=0, V8 heap flags of a 128 MB Lambda)`,
    goal: '≤ 128 MB',
    measured: `${peak.toFixed(1)} MB (${run.rssAfterLoadMb.toFixed(1)} MB after load, of which an empty Node process ${bareNodeMb.toFixed(1)}; JS heap peak ${run.heapTotalMb.toFixed(1)} MB, ${run.heapUsedMb.toFixed(1)} used; ${String(inv?.summary?.released)} released in ${inv ? ms(inv.ms) : '?'})`,
    value: peak,
    ok: peak <= 128 && inv?.summary?.released === n,
  });
  // A cold start's CPU (Node's own start included): one lock in a fresh process.
  const cold = await runBundle(bundle, {
    env: h.stackEnv(),
    events: [{ lockIds: await h.seed(1), userId: h.userId }],
  });
  const coldCpuMs = cold.cpuAtFirstMs ?? NaN;
  // Enough memory, and enough CPU (1 vCPU per 1769 MB) for the largest direct invoke to end well within the timeout.
  const { releaseMemoryMb: memorySize, releaseTimeoutSeconds: timeoutSeconds } = deployed();
  const ceil64 = (mb: number) => Math.ceil(mb / 64) * 64;
  const cpuPerLock = (inv?.cpuMs ?? NaN) / n;
  const largestCpuMs = cpuPerLock * MAX_LOCKS_PER_INVOKE;
  const forMemory = ceil64(peak * 1.25);
  const forDeadline = ceil64((MB_PER_VCPU * largestCpuMs) / (0.75 * timeoutSeconds * 1000));
  const recommended = Math.min(MB_PER_VCPU, Math.max(128, forMemory, forDeadline));
  const at = (cpuMs: number, mb: number) => (cpuMs * MB_PER_VCPU) / Math.min(mb, MB_PER_VCPU);
  h.add('memory-size', {
    what: `Recommended memorySize of the release function (now ${memorySize} MB, timeout ${timeoutSeconds} s; Lambda gives 1 vCPU per ${MB_PER_VCPU} MB)`,
    goal: '—',
    measured: `${recommended} MB: peak RSS ${peak.toFixed(0)} MB + 25 % → ≥ ${forMemory} MB; ${cpuPerLock.toFixed(2)} ms CPU per lock (ledger on) makes a ${MAX_LOCKS_PER_INVOKE}-lock invoke ≈ ${(at(largestCpuMs, memorySize) / 1000).toFixed(0)} s of CPU time at ${memorySize} MB, ${(at(largestCpuMs, recommended) / 1000).toFixed(0)} s at ${recommended} MB (≤ 75 % of the timeout needs ≥ ${forDeadline} MB); a cold start's ${ms(coldCpuMs)} of CPU takes ≈ ${ms(at(coldCpuMs, memorySize))} at ${memorySize} MB, ${ms(at(coldCpuMs, recommended))} at ${recommended} MB`,
    value: recommended,
  });
}
