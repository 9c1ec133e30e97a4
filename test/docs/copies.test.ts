/**
 * Text the docs copy from elsewhere stays the same text: the test kit's complete example in docs/ledger.md and in the
 * package's README is examples/lease-lost.test.ts (which the package's own tests run from the installed tarball),
 * and the koodrive-emulator options in docs/ledger.md are what the command's `--help` prints.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** The contents of the fenced blocks of `language` in a Markdown page, in order. */
function blocks(markdown: string, language: string): string[] {
  return [...markdown.matchAll(new RegExp(`^\`\`\`${language}\\n([\\s\\S]*?)^\`\`\`$`, 'gm'))].map(
    (m) => m[1] as string,
  );
}

describe('the test kit example', () => {
  const example = read('examples/lease-lost.test.ts');

  it.each(['docs/ledger.md', 'dev/package-readme.md'])(
    '%s shows examples/lease-lost.test.ts verbatim',
    (page) => {
      const shown = blocks(read(page), 'ts').filter((block) => block.includes('createTestbed('));
      expect(shown).toHaveLength(1);
      expect(shown[0]).toBe(example);
    },
  );

  it('finds a block that differs by one character (the check can fail)', () => {
    const page = read('docs/ledger.md').replace('leaseSeconds: 30 }', 'leaseSeconds: 31 }');
    const shown = blocks(page, 'ts').filter((block) => block.includes('createTestbed('));
    expect(shown[0]).not.toBe(example);
  });
});

describe('the koodrive-emulator options', () => {
  it('docs/ledger.md shows what `koodrive-emulator --help` prints', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', join('src', 'testing', 'emulator-cli.ts'), '--help'],
      { cwd: ROOT, encoding: 'utf8', timeout: 30_000 },
    );
    expect(stdout).toMatch(/^Usage: koodrive-emulator/);
    const shown = blocks(read('docs/ledger.md'), 'text').filter((b) =>
      b.startsWith('Usage: koodrive-emulator'),
    );
    expect(shown).toEqual([stdout]);
  }, 40_000);
});
