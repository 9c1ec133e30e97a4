/**
 * The secret cache of the packaged release function: GetSecretValue calls the local Secrets Manager answered in a
 * container's first invocation, in warm ones within the cache period, and around a short period's end.
 */
import { startBundle } from '../bundle';
import type { Harness } from '../harness';

export async function secretCache(h: Harness): Promise<void> {
  const { bundle } = await h.packaged();
  await h.resetEmulator(0);
  const reads = async (env: Record<string, string>, waitsMs: number[]) => {
    const { peer } = await startBundle(bundle, env);
    try {
      const counts: number[] = [];
      for (const wait of waitsMs) {
        await new Promise((resolve) => setTimeout(resolve, wait));
        const before = h.secrets.getSecretValueCalls;
        const inv = await peer.call('invoke', { lockIds: await h.seed(5), userId: h.userId });
        if (inv.error) throw new Error(inv.error);
        counts.push(h.secrets.getSecretValueCalls - before);
      }
      return counts;
    } finally {
      await peer.stop();
    }
  };
  const [cold = NaN, ...warm] = await reads(h.stackEnv(h.ledgerDb), [0, 0, 0, 0, 0]);
  const warmReads = warm.reduce((a, b) => a + b, 0);
  h.add('cold', {
    what: 'Secrets Manager: GetSecretValue calls in the first invocation of a container',
    goal: '1',
    measured: String(cold),
    value: cold,
    ok: cold === 1,
  });
  h.add('warm', {
    what: `Secrets Manager: GetSecretValue calls in ${warm.length} warm invocations (cache period 300 s)`,
    goal: '0',
    measured: String(warmReads),
    value: warmReads,
    ok: warmReads === 0,
  });
  const [a = 0, b = 0, after = NaN] = await reads(
    h.stackEnv(undefined, { SECRET_CACHE_SECONDS: '1' }),
    [0, 0, 1100],
  );
  h.add('expiry', {
    what: 'Secrets Manager: with SECRET_CACHE_SECONDS=1, reads in 2 invocations, then in 1 after the period',
    goal: '1, then 1',
    measured: `${a + b}, then ${after}`,
    value: a + b + after,
    ok: a + b === 1 && after === 1,
  });
}
