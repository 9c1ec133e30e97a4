/**
 * The release function's bundles with another ledger: the wiring's import of src/ledger/ledger.ts
 * swapped, at build time, for a module in dev/bench/ledger-variants/ (today's ledger as the baseline, or the
 * current ledger with its outcome write done another way). Everything else is the packaged function as built
 * by custom.esbuild, so the CPU and memory figures compare like with like.
 */
import { join } from 'node:path';
import type * as esbuild from 'esbuild';
import { buildRelease, configuredBuildOptions, ROOT, type Built } from './bundle';

export const LEDGER_VARIANTS = {
  'sdk-client':
    'the same ledger through the AWS SDK v3 client (the functions before the signed-HTTP adapter)',
  baseline: 'today’s ledger (byStatus index, DocumentClient UpdateItem per outcome)',
  coalesced: 'released outcomes coalesced into BatchWriteItem puts of up to 25 (unconditional)',
  'no-outcome': 'no write for released outcomes (the floor: what the outcome write costs)',
} as const;

export type LedgerVariant = keyof typeof LEDGER_VARIANTS;

/** Resolves src/wiring.ts's `./ledger/ledger` to `file`. */
export function swapLedger(file: string): esbuild.Plugin {
  return {
    name: 'swap-ledger',
    setup(build) {
      build.onResolve({ filter: /^\.\/ledger\/ledger$/ }, (args) =>
        args.importer.endsWith(join('src', 'wiring.ts')) ? { path: file } : undefined,
      );
    },
  };
}

/** The release function built with custom.esbuild and the ledger of `variant`. */
export async function buildWithLedger(variant: LedgerVariant, dir: string): Promise<Built> {
  const options = await configuredBuildOptions();
  const file = join(ROOT, 'dev', 'bench', 'ledger-variants', `${variant}.ts`);
  return buildRelease({ ...options, plugins: [...(options.plugins ?? []), swapLedger(file)] }, dir);
}
