/**
 * `npm run bench`: every scenario, each named for what it measures (dev/bench/scenarios/), on one shared harness
 * (dev/bench/harness.ts: the KooDrive emulator process, dynalite, the local Secrets Manager, the metering). Writes
 * bench/results.json and regenerates docs/benchmarks.md's tables from it.
 *
 *   npm run bench                                   every scenario (about 15 minutes: ledger-scale seeds 100,000 items)
 *   npm run bench -- --only ledger-cost,memory      some scenarios: their rows replace theirs in the results file
 *   npm run bench -- --quick --out /tmp/r.json      every step, tiny (the smoke test)
 *
 * A results file gathers the scenarios of several runs of one mode (full or quick); each table names its run.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { RESULTS_FILE, updateDocs } from './docs';
import { startHarness, type Harness } from './harness';
import {
  endMachine,
  machine,
  markdown,
  merge,
  round,
  SCENARIOS,
  type Results,
  type Row,
  type Run,
  type ScenarioName,
} from './report';
import { answerSize } from './scenarios/answer-size';
import { clientOverhead } from './scenarios/client-overhead';
import { coldStart } from './scenarios/cold-start';
import { dynamodbClients } from './scenarios/dynamodb-clients';
import { findByUser } from './scenarios/find-by-user';
import { ledgerCost } from './scenarios/ledger-cost';
import { ledgerScale } from './scenarios/ledger-scale';
import { memory } from './scenarios/memory';
import { releaseLatency } from './scenarios/release-latency';
import { secretCache } from './scenarios/secret-cache';

const fresh: Omit<Results, 'runs'> = { scenarios: {}, rows: [] };

/** Run order: the 100,000-item scenarios last. */
const RUNNERS: Record<ScenarioName, (h: Harness) => Promise<void>> = {
  'ledger-cost': ledgerCost,
  'dynamodb-clients': dynamodbClients,
  'release-latency': releaseLatency,
  'client-overhead': clientOverhead,
  'secret-cache': secretCache,
  memory,
  'cold-start': (h) => coldStart(h, fresh),
  'answer-size': answerSize,
  'find-by-user': findByUser,
  'ledger-scale': ledgerScale,
};

const { values: flags } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, out: { type: 'string' }, only: { type: 'string' } },
});
const chosen = (flags.only?.split(',') ?? Object.keys(RUNNERS)) as ScenarioName[];
const unknown = chosen.filter((name) => !(name in SCENARIOS));
if (unknown.length) {
  process.stderr.write(
    `unknown scenario(s) ${unknown.join(', ')}; known: ${Object.keys(RUNNERS).join(', ')}\n`,
  );
  process.exit(2);
}
const outFile = flags.out ?? RESULTS_FILE;
const started = performance.now();
const log = (text: string) =>
  process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1)} s] ${text}\n`);

const run: Run = {
  startedAt: new Date().toISOString(),
  mode: flags.quick ? 'quick' : 'full',
  machine: machine(),
  durationS: 0,
  scenarios: (Object.keys(RUNNERS) as ScenarioName[]).filter((name) => chosen.includes(name)),
  parameters: {},
};
let current: ScenarioName = 'ledger-cost';
const section = () => (fresh.scenarios[current] ??= { run: run.startedAt, notes: [] });
const harness = await startHarness({
  quick: flags.quick,
  slsPackage: !flags.quick && run.scenarios.includes('cold-start'),
  log,
  add: (id: string, row: Omit<Row, 'id' | 'scenario'>) =>
    void fresh.rows.push({ id: `${current}.${id}`, scenario: current, ...row }),
  note: (text) => void section().notes.push(text),
  markdown: (text) => void (section().markdown = text),
});
run.parameters = { ...harness.sizes };
const failed: string[] = [];
try {
  for (const name of run.scenarios) {
    current = name;
    section();
    log(`scenario ${name}`);
    // A scenario that fails keeps the rows it added and says why; the others still run; the run exits 1.
    await RUNNERS[name](harness).catch((error: unknown) => {
      const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
      process.stderr.write(`scenario ${name} failed: ${text}\n`);
      section().notes.push(`This scenario failed in this run: ${text.split('\n')[0] ?? ''}`);
      failed.push(name);
    });
  }
} finally {
  await harness.close();
}
endMachine(run.machine);
run.durationS = round((performance.now() - started) / 1000);
const before = existsSync(outFile) ? (JSON.parse(readFileSync(outFile, 'utf8')) as Results) : undefined;
const results = merge(before?.runs ? before : undefined, run, fresh);
results.markdown = markdown(results);
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);
// The docs' tables follow the default results file (npm run bench:docs does the same by hand).
if (outFile === RESULTS_FILE) await updateDocs();
process.stdout.write(`\n${results.markdown}\n\nResults written to ${outFile}\n`);
if (failed.length) {
  process.stderr.write(`failed: ${failed.join(', ')}\n`);
  process.exitCode = 1;
}
