/**
 * `npm run build` (run by `npm pack` through prepack): the package entries `koodrive-lock-releaser/holder` and
 * `koodrive-lock-releaser/testing` and the `koodrive-emulator` command, for ESM and CommonJS consumers
 * (dependencies stay imports), and their type declarations under dist/types (.d.ts, and .d.cts for require).
 *
 * One copy of every class across the two entries (a LockLostError thrown by the testbed's holder must be the
 * holder entry's LockLostError): ESM shares chunks (esbuild splitting); CommonJS, which esbuild cannot split,
 * gets one bundle dist/cjs/index.cjs and two thin entries that pick their names from it.
 *
 * The sources import each other without file extensions (bundler resolution); a consumer on Node's own
 * resolution (`moduleResolution: node16/nodenext`) needs them in the declarations, so every relative specifier
 * there gets the `.js` of the file it names (or `/index.js`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';

const ROOT = resolve(import.meta.dirname, '..');
const DIST = join(ROOT, 'dist');
const TYPES = join(DIST, 'types');

rmSync(DIST, { recursive: true, force: true });

const tsc = spawnSync('tsc', ['-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit', shell: false });
if (tsc.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed (${tsc.status ?? tsc.signal})`);

for (const file of declarationFiles(TYPES)) {
  const text = readFileSync(file, 'utf8');
  const fixed = text.replace(
    /(\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]*)\2/g,
    (whole, lead: string, quote: string, specifier: string) => {
      if (/\.(js|mjs|cjs|json)$/.test(specifier)) return whole;
      const base = resolve(dirname(file), specifier);
      if (existsSync(`${base}.d.ts`)) return `${lead}${quote}${specifier}.js${quote}`;
      if (existsSync(join(base, 'index.d.ts'))) return `${lead}${quote}${specifier}/index.js${quote}`;
      throw new Error(`${file}: cannot find the declarations of ${specifier}`);
    },
  );
  if (fixed !== text) writeFileSync(file, fixed);
}

const common = {
  bundle: true,
  platform: 'node',
  target: 'node22',
  packages: 'external',
  logLevel: 'warning',
} as const;

await build({
  ...common,
  entryPoints: {
    holder: join(ROOT, 'src', 'holder.ts'),
    testing: join(ROOT, 'src', 'testing.ts'),
    'koodrive-emulator': join(ROOT, 'src', 'testing', 'emulator-cli.ts'),
  },
  outdir: DIST,
  format: 'esm',
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
});

await build({
  ...common,
  stdin: {
    contents: "export * from './src/holder';\nexport * from './src/testing';\n",
    resolveDir: ROOT,
    loader: 'ts',
    sourcefile: 'package-index.ts',
  },
  outfile: join(DIST, 'cjs', 'index.cjs'),
  format: 'cjs',
});
for (const entry of ['holder', 'testing']) {
  const names = Object.keys((await import(join(DIST, `${entry}.js`))) as object).sort();
  writeFileSync(
    join(DIST, `${entry}.cjs`),
    `'use strict';\nconst all = require('./cjs/index.cjs');\nmodule.exports = {\n${names.map((n) => `  ${n}: all.${n},`).join('\n')}\n};\n`,
  );
}

// Declarations for `require`: the same text, their relative imports naming .cjs files.
for (const file of declarationFiles(TYPES)) {
  const text = readFileSync(file, 'utf8').replace(
    /((?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)(['"])\.{1,2}\/[^'"]*)\.js\2/g,
    '$1.cjs$2',
  );
  writeFileSync(file.replace(/\.d\.ts$/, '.d.cts'), text);
}

function declarationFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return declarationFiles(path);
    return entry.name.endsWith('.d.ts') ? [path] : [];
  });
}
