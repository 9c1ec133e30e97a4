/**
 * Cold start of the release function as packaged (`sls package` in a full run): its zipped size, its module load
 * and its first release in fresh processes, with and without the ledger; then the alternative builds, interleaved,
 * and what the bundle is made of.
 */
import { join } from 'node:path';
import { composition, bundlesUndiciRoot, measureVariants, undici7, variants } from '../build-variants';
import { buildRelease, configuredBuildOptions, runBundle } from '../bundle';
import type { Harness } from '../harness';
import { kb, median, ms, type Results } from '../report';

export async function coldStart(
  h: Harness,
  out: Pick<Results, 'alternatives' | 'composition'>,
): Promise<void> {
  const { bundle, zipBytes, source } = await h.packaged();
  const { loadRuns, coldRuns } = h.sizes;
  h.add('zip', {
    what: 'Zipped size of the release function',
    goal: '≤ 250 KB',
    measured: `${kb(zipBytes)} (${source})`,
    value: zipBytes / 1024,
    ok: zipBytes <= 250 * 1024,
  });
  const configured = await configuredBuildOptions();
  const meta = await buildRelease(configured, join(h.scratch, 'metafile'));
  const parts = composition(meta.metafile);
  out.composition = { totalBytes: parts.total, packages: parts.packages, files: parts.files.slice(0, 15) };

  h.log(`cold start: module load, ${loadRuns} fresh processes`);
  const loads: number[] = [];
  for (let i = 0; i < loadRuns; i++) loads.push((await runBundle(bundle)).loadMs);
  const load = median(loads);
  h.add('load', {
    what: `Module load time of the packaged bundle (median of ${loadRuns} fresh processes)`,
    goal: '≤ 50 ms',
    measured: `${ms(load)} (min ${ms(Math.min(...loads))}, max ${ms(Math.max(...loads))})`,
    value: load,
    ok: load <= 50,
  });

  h.log(`cold start: first release, ${coldRuns} fresh processes`);
  await h.resetEmulator(0);
  const cold = async (env: Record<string, string>, runs: number) => {
    const firsts: number[] = [];
    const loadsMs: number[] = [];
    const reads = h.secrets.getSecretValueCalls;
    for (let i = 0; i < runs; i++) {
      const run = await runBundle(bundle, { env, events: [{ lockIds: await h.seed(1), userId: h.userId }] });
      if (run.invocations[0]?.summary?.released !== 1)
        throw new Error(`cold first release did not release its lock: ${JSON.stringify(run.invocations[0])}`);
      firsts.push(run.firstMs ?? NaN);
      loadsMs.push(run.loadMs);
    }
    return {
      first: median(firsts),
      load: median(loadsMs),
      reads: (h.secrets.getSecretValueCalls - reads) / runs,
    };
  };
  const plain = await cold(h.stackEnv(), coldRuns);
  h.add('first', {
    what: 'First release in a fresh process (load + 1 lock, secret read included), no ledger',
    goal: '≤ 100 ms',
    measured: `${ms(plain.first)} median (load ${ms(plain.load)} + invocation ${ms(plain.first - plain.load)}, ${plain.reads} secret read)`,
    value: plain.first,
    ok: plain.first <= 100,
  });
  const ledger = await cold(h.stackEnv(h.ledgerDb), Math.max(1, Math.ceil(coldRuns / 2)));
  h.add('first-ledger', {
    what: 'The same with LOCK_LEDGER_TABLE set (as deployed: + the live-lease read and the outcome write)',
    goal: '—',
    measured: `${ms(ledger.first)} median (invocation ${ms(ledger.first - ledger.load)})`,
    value: ledger.first,
  });

  h.log('cold start: alternative builds');
  const u7 = await undici7(h.sizes.fetchUndici7);
  if (!u7) h.note('undici 7 not measured: no copy under .local/bench/ and npm could not fetch one.');
  else h.note(`undici 7 is ${u7.version} (npm pack undici@7, cached in .local/bench/).`);
  await h.resetEmulator(0);
  out.alternatives = await measureVariants(
    configured,
    variants(configured, u7?.dir, bundlesUndiciRoot(meta.metafile)),
    h.sizes.variantRuns,
    join(h.scratch, 'variants'),
    { env: h.stackEnv(), event: async () => ({ lockIds: await h.seed(1), userId: h.userId }) },
  );
}
