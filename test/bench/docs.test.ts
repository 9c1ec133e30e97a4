/**
 * docs/benchmarks.md shows the last results file: its generated block is exactly what `npm run bench:docs` makes of
 * bench/results.json, and that file has the shape the generator reads (known rows in table order, the machine with
 * its load average and CPU calibration). The generator itself keeps the hand-written text around the block.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DOCS_FILE,
  END,
  generatedBlock,
  render,
  RESULTS_FILE,
  START,
  withTables,
} from '../../dev/bench/docs';
import { ROW_IDS, type Results } from '../../dev/bench/report';

const results = JSON.parse(readFileSync(RESULTS_FILE, 'utf8')) as Results & { markdown: string };
const page = readFileSync(DOCS_FILE, 'utf8');

describe('docs/benchmarks.md', () => {
  it('holds the tables generated from bench/results.json, unchanged', async () => {
    expect(page.indexOf(START)).toBeGreaterThan(-1);
    expect(page.indexOf(END)).toBeGreaterThan(page.indexOf(START));
    expect(await render(page, results)).toBe(page);
    for (const row of results.rows) expect(page).toContain(row.what.slice(0, 40));
  });

  it('reads a results file of the shape the bench writes', () => {
    const known = [...ROW_IDS] as string[];
    const ids = results.rows.map((row) => row.id);
    expect(ids.length).toBeGreaterThan(0);
    expect(ids.every((id) => known.includes(id))).toBe(true);
    expect(ids).toEqual([...ids].sort((a, b) => known.indexOf(a) - known.indexOf(b)));
    for (const row of results.rows) {
      expect(typeof row.value, row.id).toBe('number');
      expect(row.what && row.goal && row.measured, row.id).toBeTruthy();
    }
    expect(results.machine.loadAverage.start).toBeGreaterThanOrEqual(0);
    expect(results.machine.loadAverage.end).toBeGreaterThanOrEqual(0);
    expect(results.machine.calibrationMs?.start).toBeGreaterThan(0);
    expect(results.machine.calibrationMs?.end).toBeGreaterThan(0);
  });

  it('the generator replaces only its block and follows the results', () => {
    const changed = structuredClone(results);
    changed.rows[0]!.measured = 'a figure no run printed';
    const before = 'Hand-written text.\n\n';
    const regenerated = withTables(`${before}${generatedBlock(results)}\n\nMore text.\n`, changed);
    expect(regenerated.startsWith(before)).toBe(true);
    expect(regenerated.endsWith('\n\nMore text.\n')).toBe(true);
    expect(regenerated).toContain('a figure no run printed');
    expect(regenerated).not.toBe(withTables(regenerated, results));
  });
});
