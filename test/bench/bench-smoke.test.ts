/**
 * `npm run bench -- --quick` runs end to end and produces every row of the table. Timings are not checked here
 * (these machines are noisy): the benchmark reports them, it does not assert them.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROW_IDS, type Results } from '../../dev/bench/report';

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
  it('runs and produces every row, with the machine it ran on', { timeout: 300_000 }, async () => {
    const out = join(scratch, 'results.json');
    const { code, output } = await runQuick(out);
    expect(code, output).toBe(0);
    expect(existsSync(out)).toBe(true);

    const results = JSON.parse(readFileSync(out, 'utf8')) as Results & { markdown: string };
    expect(results.mode).toBe('quick');
    expect(results.rows.map((row) => row.id)).toEqual([...ROW_IDS]);
    for (const row of results.rows) {
      expect(row.what, row.id).not.toBe('');
      expect(row.goal, row.id).not.toBe('');
      expect(row.measured, row.id).not.toBe('');
      expect(typeof row.value, row.id).toBe('number');
    }
    expect(results.machine.cpu).not.toBe('');
    expect(results.machine.cores).toBeGreaterThan(0);
    expect(results.machine.node).toMatch(/^v\d+/);
    // Comparable runs: the CPU calibration at both ends and the load average.
    expect(results.machine.calibrationMs?.start).toBeGreaterThan(0);
    expect(results.machine.calibrationMs?.end).toBeGreaterThan(0);
    expect(results.machine.loadAverage.end).toBeGreaterThanOrEqual(0);
    expect(results.alternatives.length).toBeGreaterThan(1);
    expect(results.composition.packages.length).toBeGreaterThan(0);

    // The printed table is the one written, with every row and the machine line.
    expect(output).toContain(results.markdown);
    expect(results.markdown).toContain(results.machine.cpu);
    for (const row of results.rows) expect(results.markdown).toContain(row.what);

    // The ledger at scale: every goal row names its baseline, and the load model and cost sections are written.
    for (const row of results.rows.filter((r) => r.id.startsWith('10.') && r.id !== '10.5-variants')) {
      expect(row.measured, row.id).toContain('baseline');
    }
    // The ledger's cost: every goal next to the AWS SDK client's figure; every DynamoDB client candidate measured.
    for (const row of results.rows.filter((r) => r.id.startsWith('ledger.') && r.id !== 'ledger.clients')) {
      expect(row.measured, row.id).toContain('baseline');
    }
    for (const name of ['aws4-undici', 'aws-lite', 'aws4fetch', 'sdk']) {
      expect(results.rows.find((r) => r.id === 'ledger.clients')?.measured).toContain(`${name}: `);
    }
    expect(results.scaleSections).toContain('### Load model');
    expect(results.scaleSections).toContain('### Cost');
    expect(results.markdown).toContain(results.scaleSections);
  });
});
