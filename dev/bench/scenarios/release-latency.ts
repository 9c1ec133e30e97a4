/**
 * Release latency against the emulator's fixed latency L: the KooDrive calls alone (engine + KooDriveClient as
 * wired, in a worker) and the floor of this setup (pre-signed requests over a bare undici pool), then the packaged
 * release function's whole invocation (secret read, ledger requests), first and warm; and the TCP connections each
 * opened (connection reuse).
 */
import { startBundle } from '../bundle';
import { hostCpuMs, type Harness } from '../harness';
import { ms } from '../report';

export async function releaseLatency(h: Harness): Promise<void> {
  const { n, concurrency, latencyMs } = h.sizes;
  const budget = h.ideal(n);
  const params = `N=${n}, L=${latencyMs} ms, C=${concurrency}`;
  const locks = (ids: string[]) => ids.map((lockId) => ({ lockId, userId: h.userId }));

  h.log(`release latency: KooDrive calls alone (${params})`);
  await h.resetEmulator();
  const calls = await h.worker(h.stackEnv());
  let callsCpuPerLock: number;
  try {
    await calls.call('prepare');
    const ids = await h.seed(n);
    const before = await h.stats();
    const run = await calls.call('engine', locks(ids), concurrency);
    const after = await h.stats();
    const emuCpu = after.cpuMs - before.cpuMs;
    const requests = after.requests - before.requests;
    callsCpuPerLock = run.cpuMs / n;
    h.add('calls', {
      what: `Latency-bound release, KooDrive calls alone (engine + KooDriveClient as wired, no ledger; ${params})`,
      goal: '≤ 1.10 × ideal',
      measured: `${run.ms.toFixed(0)} ms = ${(run.ms / budget).toFixed(3)} × ideal ${budget} ms (${run.released} released; client CPU ${ms(run.cpuMs)}, emulator CPU ${ms(emuCpu)} = ${(emuCpu / requests).toFixed(3)} ms/request)`,
      value: run.ms / budget,
      ok: run.ms / budget <= 1.1 && run.released === n,
    });
    const floor = await calls.call('floor', h.emulatorUrl, locks(await h.seed(n)), concurrency);
    const f1 = await h.stats();
    h.add('floor', {
      what: `Latency-bound floor of this setup: the same ${n} requests signed beforehand, over a bare undici pool (no engine, no client)`,
      goal: '—',
      measured: `${floor.ms.toFixed(0)} ms = ${(floor.ms / budget).toFixed(3)} × ideal (${floor.released} released; the emulator spent ${((f1.cpuMs - after.cpuMs) / n).toFixed(3)} ms CPU per request)`,
      value: floor.ms / budget,
    });
    const opened = after.connectionsOpened - before.connectionsOpened;
    h.add('connections', {
      what: 'Connection reuse: TCP connections opened during the KooDrive calls alone',
      goal: `≤ C = ${concurrency}`,
      measured: `${opened} for ${requests} requests`,
      value: opened,
      ok: opened <= concurrency,
    });
  } finally {
    await calls.stop();
  }

  h.log('release latency: the whole invocation (packaged release function, ledger on dynalite)');
  const { peer } = await startBundle((await h.packaged()).bundle, h.stackEnv(h.ledgerDb));
  try {
    const invoke = async () => {
      const ids = await h.seed(n);
      const s0 = await h.stats();
      const cpu0 = hostCpuMs();
      const inv = await peer.call('invoke', { lockIds: ids, userId: h.userId });
      if (inv.error) throw new Error(`release invocation failed: ${inv.error}`);
      const s1 = await h.stats();
      return {
        inv,
        opened: s1.connectionsOpened - s0.connectionsOpened,
        emulatorCpu: s1.cpuMs - s0.cpuMs,
        hostCpu: hostCpuMs() - cpu0,
        released: Number(inv.summary?.released ?? 0),
      };
    };
    const first = await invoke();
    const warm = await invoke();
    const ratio = first.inv.ms / budget;
    h.add('whole', {
      what: `Latency-bound release, whole invocation (packaged release function: secret read, ledger requests; ${params}; first in a fresh process)`,
      goal: '≤ 1.5 × ideal',
      measured: `${first.inv.ms.toFixed(0)} ms = ${ratio.toFixed(3)} × ideal ${budget} ms (${first.released} released; handler CPU ${ms(first.inv.cpuMs)}, emulator ${ms(first.emulatorCpu)}, dynalite + Secrets Manager ${ms(first.hostCpu)})`,
      value: ratio,
      ok: ratio <= 1.5 && first.released === n,
    });
    h.add('whole-warm', {
      what: 'Latency-bound release, whole invocation, second (warm) invocation in the same process',
      goal: '—',
      measured: `${warm.inv.ms.toFixed(0)} ms = ${(warm.inv.ms / budget).toFixed(3)} × ideal (handler CPU ${ms(warm.inv.cpuMs)}, dynalite ${ms(warm.hostCpu)})`,
      value: warm.inv.ms / budget,
    });
    const perLock = warm.inv.cpuMs / n;
    h.add('cpu', {
      what: 'CPU per lock in the handler process (warm: signing, HTTP, JSON log line, ledger requests)',
      goal: '—',
      measured: `${perLock.toFixed(3)} ms per lock, of which the KooDrive calls ≈ ${callsCpuPerLock.toFixed(3)} (the calls-alone run, JIT warm-up included): the rest is the ledger's requests (live-lease read, outcome write), logs and metrics; the emulator spent ${(warm.emulatorCpu / n).toFixed(3)} ms per request`,
      value: perLock,
    });
    h.add('connections-whole', {
      what: 'Connection reuse: connections opened by the first (cold) whole invocation',
      goal: `≤ C = ${concurrency}`,
      measured: String(first.opened),
      value: first.opened,
      ok: first.opened <= concurrency,
    });
    h.add('connections-warm', {
      what: 'Connection reuse: connections opened by the second (warm) invocation',
      goal: '0',
      measured: String(warm.opened),
      value: warm.opened,
      ok: warm.opened === 0,
    });
  } finally {
    await peer.stop();
  }
}
