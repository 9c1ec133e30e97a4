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
import { merge, ROW_IDS, type Results, type Row, type Run, type ScenarioName } from '../../dev/bench/report';

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
    // Every scenario's rows come from a run the file describes (machine, load average, CPU calibration).
    expect(results.runs.length).toBeGreaterThan(0);
    for (const run of results.runs) {
      expect(run.machine.loadAverage.start).toBeGreaterThanOrEqual(0);
      expect(run.machine.loadAverage.end).toBeGreaterThanOrEqual(0);
      expect(run.machine.calibrationMs.start).toBeGreaterThan(0);
      expect(run.machine.calibrationMs.end).toBeGreaterThan(0);
    }
    for (const row of results.rows) {
      const from = results.scenarios[row.scenario]?.run;
      expect(
        results.runs.map((run) => run.startedAt),
        row.id,
      ).toContain(from);
      expect(page, row.id).toContain(`Run ${String(from)}.`);
    }
  });

  it('a partial run replaces its scenarios and keeps the others, with the run each came from', () => {
    const run = (startedAt: string, scenarios: ScenarioName[]): Run => ({
      startedAt,
      mode: 'full',
      machine: results.runs[0]!.machine,
      durationS: 1,
      scenarios,
      parameters: {},
    });
    const row = (id: string, scenario: ScenarioName, measured: string): Row => ({
      id,
      scenario,
      what: id,
      goal: '—',
      measured,
      value: 1,
    });
    const first = merge(undefined, run('t1', ['memory', 'ledger-cost']), {
      scenarios: { memory: { run: 't1', notes: [] }, 'ledger-cost': { run: 't1', notes: [] } },
      rows: [row('memory.peak-rss', 'memory', 'old'), row('ledger-cost.cpu', 'ledger-cost', 'kept')],
    });
    const second = merge(first, run('t2', ['memory']), {
      scenarios: { memory: { run: 't2', notes: [] } },
      rows: [row('memory.peak-rss', 'memory', 'new')],
    });
    expect(second.rows.map((r) => `${r.id} ${r.measured}`)).toEqual([
      'ledger-cost.cpu kept',
      'memory.peak-rss new',
    ]);
    expect(second.scenarios.memory?.run).toBe('t2');
    expect(second.scenarios['ledger-cost']?.run).toBe('t1');
    expect(second.runs.map((r) => r.startedAt)).toEqual(['t1', 't2']);
    // A run replacing every scenario of an earlier one drops that run; a quick run starts the file afresh.
    const third = merge(second, run('t3', ['ledger-cost']), {
      scenarios: { 'ledger-cost': { run: 't3', notes: [] } },
      rows: [row('ledger-cost.cpu', 'ledger-cost', 'newer')],
    });
    expect(third.runs.map((r) => r.startedAt)).toEqual(['t2', 't3']);
    const quick = merge(
      third,
      { ...run('t4', ['memory']), mode: 'quick' },
      {
        scenarios: { memory: { run: 't4', notes: [] } },
        rows: [row('memory.peak-rss', 'memory', 'quick')],
      },
    );
    expect(quick.rows.map((r) => r.id)).toEqual(['memory.peak-rss']);
    expect(quick.runs.map((r) => r.startedAt)).toEqual(['t4']);
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
