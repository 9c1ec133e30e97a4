/**
 * docs/protocol.md shows the committed simulation figures: its generated block is exactly what `npm run
 * simulate:docs` makes of sim/results.json, and that file has the shape `npm run simulate -- --results` writes. The
 * generator keeps the hand-written text around the block.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DOCS_FILE, END, generatedBlock, render, RESULTS_FILE, START, withFigures } from '../../dev/sim/docs';
import { REQUIRED_BRANCHES } from '../../dev/sim/coverage';
import type { SimResults } from '../../dev/sim/results';

const results = JSON.parse(readFileSync(RESULTS_FILE, 'utf8')) as SimResults;
const page = readFileSync(DOCS_FILE, 'utf8');

describe('docs/protocol.md simulation figures', () => {
  it('holds the block generated from sim/results.json, unchanged', async () => {
    expect(page.indexOf(START)).toBeGreaterThan(-1);
    expect(page.indexOf(END)).toBeGreaterThan(page.indexOf(START));
    expect(await render(page, results)).toBe(page);
    expect(page).toContain(results.command);
  });

  it('reads a results file of the shape the simulation writes', () => {
    expect(results.command).toBe(
      `npm run simulate -- --schedules ${results.schedules} --seed ${results.seed}`,
    );
    expect(results.coverage.listed).toBe(Object.keys(REQUIRED_BRANCHES).length);
    expect(results.coverage.ran + results.coverage.neverRan.length).toBe(results.coverage.listed);
    for (const row of [...results.ttf, ...results.undisturbed]) {
      expect(row.locks, `lease ${row.leaseSeconds}`).toBeGreaterThan(0);
      expect(row.p50Seconds).toBeLessThanOrEqual(row.p99Seconds);
      expect(row.p99Seconds).toBeLessThanOrEqual(row.maxSeconds);
    }
    expect(results.undisturbed.length).toBeGreaterThan(0);
  });

  it('the generator replaces only its block, follows the results, and refuses a page without markers', () => {
    const changed = structuredClone(results);
    changed.violations = 987_654;
    const before = 'Hand-written text.\n\n';
    const regenerated = withFigures(`${before}${generatedBlock(results)}\n\nMore text.\n`, changed);
    expect(regenerated.startsWith(before)).toBe(true);
    expect(regenerated.endsWith('\n\nMore text.\n')).toBe(true);
    expect(regenerated).toContain('987,654 violations');
    expect(() => withFigures('# No markers\n', results)).toThrow(/no block/);
  });
});
