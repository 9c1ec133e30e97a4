/**
 * `npm pack` / `npm publish` always ship the root README*, and the repository's README serves the service's
 * operators, not the holder's users. prepack (`swap`) sets it aside as .README.repo.md and puts the package's
 * own README (dev/package-readme.md) in its place; postpack (`restore`) puts it back. `restore` also repairs a
 * pack that failed halfway (npm runs no postpack then): run it by hand, or let the next `swap` refuse.
 */
import { copyFileSync, existsSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const README = join(ROOT, 'README.md');
const ASIDE = join(ROOT, '.README.repo.md');
const PACKAGE_README = join(ROOT, 'dev', 'package-readme.md');

const command = process.argv[2];
if (command === 'swap') {
  if (existsSync(ASIDE)) {
    throw new Error(
      '.README.repo.md exists: a pack stopped halfway; run `npx tsx dev/package-readme.ts restore`',
    );
  }
  renameSync(README, ASIDE);
  copyFileSync(PACKAGE_README, README);
} else if (command === 'restore') {
  if (existsSync(ASIDE)) renameSync(ASIDE, README);
} else {
  throw new Error('usage: tsx dev/package-readme.ts swap|restore');
}
