/**
 * `npm run build` (run by `npm pack` through prepack): the package entry `koodrive-lock-releaser/holder` as one
 * ESM file, dist/holder.js (dependencies stay imports), and its type declarations under dist/types.
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

await build({
  entryPoints: [join(ROOT, 'src', 'holder.ts')],
  outfile: join(DIST, 'holder.js'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  packages: 'external',
  logLevel: 'warning',
});

function declarationFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return declarationFiles(path);
    return entry.name.endsWith('.d.ts') ? [path] : [];
  });
}
