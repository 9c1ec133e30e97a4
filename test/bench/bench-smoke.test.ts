/**
 * `npm run bench -- --quick` runs every scenario end to end and produces every row of the tables. Timings are not checked here
 * (these machines are noisy): the benchmark reports them, it does not assert them.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROW_IDS, SCENARIOS, type Results } from '../../dev/bench/report';

const ROOT = join(import.meta.dirname, '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'bench-smoke-'));

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

function runQuick(out: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'dev/bench/run.ts', '--quick', '--out', out], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-400_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe('npm run bench -- --quick', () => {
  it(
    'runs every scenario and produces every row, with the run it came from',
    { timeout: 600_000 },
    async () => {
      const out = join(scratch, 'results.json');
      const { code, output } = await runQuick(out);
      expect(code, output).toBe(0);
      expect(existsSync(out)).toBe(true);

      const results = JSON.parse(readFileSync(out, 'utf8')) as Results & { markdown: string };
      expect(results.rows.map((row) => row.id)).toEqual([...ROW_IDS]);
      for (const row of results.rows) {
        expect(row.id.startsWith(`${row.scenario}.`), row.id).toBe(true);
        expect(row.what, row.id).not.toBe('');
        expect(row.goal, row.id).not.toBe('');
        expect(row.measured, row.id).not.toBe('');
        expect(typeof row.value, row.id).toBe('number');
      }
      // One run, of every scenario, with the machine, its load average and the CPU calibration at both ends.
      expect(results.runs).toHaveLength(1);
      const [run] = results.runs;
      expect(run?.mode).toBe('quick');
      expect(run?.scenarios.toSorted()).toEqual(Object.keys(SCENARIOS).toSorted());
      expect(Object.values(results.scenarios).map((s) => s.run)).toEqual(
        Object.keys(SCENARIOS).map(() => run?.startedAt),
      );
      expect(run?.machine.cpu).not.toBe('');
      expect(run?.machine.cores).toBeGreaterThan(0);
      expect(run?.machine.node).toMatch(/^v\d+/);
      expect(run?.machine.calibrationMs.start).toBeGreaterThan(0);
      expect(run?.machine.calibrationMs.end).toBeGreaterThan(0);
      expect(run?.machine.loadAverage.end).toBeGreaterThanOrEqual(0);
      expect(results.alternatives?.length).toBeGreaterThan(1);
      expect(results.composition?.packages.length).toBeGreaterThan(0);

      // The printed tables are the ones written, each naming its run.
      expect(output).toContain(results.markdown);
      expect(results.markdown).toContain(run?.machine.cpu);
      for (const row of results.rows) expect(results.markdown).toContain(row.what);
      expect(results.markdown.split(`Run ${run?.startedAt}.`)).toHaveLength(
        Object.keys(SCENARIOS).length + 1,
      );

      // The ledger's cost: every goal next to the AWS SDK client's figure; every DynamoDB client candidate measured.
      for (const row of results.rows.filter((r) => r.scenario === 'ledger-cost')) {
        expect(row.measured, row.id).toContain('baseline');
      }
      for (const name of ['aws4-undici', 'aws-lite', 'aws4fetch', 'sdk']) {
        expect(results.rows.find((r) => r.id === 'dynamodb-clients.update')?.measured).toContain(`${name}: `);
      }
      // Find-by-user next to its Scan baseline; the ledger at scale with its load model and cost sections.
      expect(results.rows.find((r) => r.id === 'find-by-user.warm')?.measured).toContain('baseline (Scan');
      expect(results.scenarios['ledger-scale']?.markdown).toContain('#### Load model');
      expect(results.scenarios['ledger-scale']?.markdown).toContain('#### Cost');
      // The hostile payloads were answered: the answers have a size and the handler logged.
      for (const id of ['answer-size.long-lock-ids', 'answer-size.long-user-id']) {
        expect(results.rows.find((r) => r.id === id)?.value, id).toBeGreaterThan(0);
      }
    },
  );
});
