/**
 * The README's holder sample compiles as written, in a strict project, as a module without top-level await,
 * against the package entry it imports (koodrive-lock-releaser/holder, mapped to the source of the package's entry).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');

it('the holder sample in README.md type-checks against src/holder.ts', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const samples = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  const sample = samples.find((s) => s.includes("from 'koodrive-lock-releaser/holder'"));
  expect(sample).toBeDefined();
  const dir = mkdtempSync(join(tmpdir(), 'readme-sample-'));
  try {
    const file = join(dir, 'worker.ts');
    writeFileSync(file, sample as string);
    // With the declarations the package build includes (tsconfig.build.json).
    const program = ts.createProgram([file, join(ROOT, 'src', 'koodrive', 'undici-lib.d.ts')], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      // The sources' own resolution (the package's declarations are built from them with it).
      module: ts.ModuleKind.Preserve,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      skipLibCheck: true,
      types: ['node'],
      typeRoots: [join(ROOT, 'node_modules', '@types')],
      baseUrl: dir,
      paths: { 'koodrive-lock-releaser/holder': [join(ROOT, 'src', 'holder.ts')] },
    });
    const problems = ts
      .getPreEmitDiagnostics(program)
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(problems).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
