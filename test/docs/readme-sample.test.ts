/**
 * The holder samples of README.md and of the package's own README (dev/package-readme.md) compile as written, in a
 * strict project, as a module without top-level await, against the package entry they import
 * (koodrive-lock-releaser/holder, mapped to the source of the package's entry). The package's tests type-check the
 * package README again from the installed tarball; this catches a drift without packing.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');

/**
 * The `await`s outside any function: a CommonJS project refuses them (TS1309), and the compile below, as a module,
 * would accept them.
 */
function topLevelAwaits(source: string): string[] {
  const file = ts.createSourceFile('sample.ts', source, ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) || ts.isClassLike(node)) return;
    if (ts.isAwaitExpression(node) || (ts.isForOfStatement(node) && node.awaitModifier)) {
      found.push(node.getText(file).split('\n')[0] as string);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

it('the top-level await check finds one, and none inside a function', () => {
  expect(topLevelAwaits('const a = await f();\nasync function g() { await f(); }\n')).toEqual(['await f()']);
  expect(topLevelAwaits('for await (const x of xs) {}')).toHaveLength(1);
  expect(topLevelAwaits('export const h = async () => { await f(); };')).toEqual([]);
});

it.each(['README.md', 'dev/package-readme.md'])(
  'the holder sample in %s type-checks against src/holder.ts',
  (page) => {
    const readme = readFileSync(join(ROOT, page), 'utf8');
    const samples = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
    // The holder sample; the test kit's example (test/docs/copies.test.ts) imports vitest.
    const sample = samples.find(
      (s) => s.includes("from 'koodrive-lock-releaser/holder'") && !s.includes('createTestbed('),
    );
    expect(sample).toBeDefined();
    expect(topLevelAwaits(sample as string)).toEqual([]);
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
  },
  60_000,
);
