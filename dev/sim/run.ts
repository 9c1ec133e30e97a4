/**
 * npm run simulate -- --schedules N [--seed S] [--workers W] [--verbose] [--variant NAME] [--results FILE]
 *
 * Runs N seeded schedules (seeds S, S+1, …; S random and printed when not given) of the deterministic simulation
 * (dev/sim/world.ts) and prints the schedules run, the faults injected, time-to-free against the bound and every
 * violation with the seed that replays it (`--schedules 1 --seed <seed> --verbose` prints its trace). Exits 1 on
 * any violation, and when a protocol branch of dev/sim/coverage.ts never ran in a run of 2,000 schedules or more
 * (not for --verbose replays or --variant runs). Schedules run in worker threads (default: one per core). `--variant` runs one of the deliberately
 * broken systems of dev/sim/variants.ts instead (the checker must then report violations). `--results FILE` writes the
 * run's figures as JSON (sim/results.json is the one docs/protocol.md shows: `npm run simulate:docs`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { BROKEN_VARIANTS } from './variants';
import { runSchedule, type ScheduleResult } from './world';
import { missingBranches } from './coverage';

/** The CI run's schedules: from this many on, a listed branch that never ran fails the run. */
const COVERAGE_SCHEDULES = 2000;
import { toResults } from './results';
import { summarize, type Summary, emptySummary, mergeSummary, formatSummary } from './summary';

interface Args {
  schedules: number;
  seed: number;
  workers: number;
  verbose: boolean;
  variant: string | undefined;
  results: string | undefined;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    schedules: 100,
    // The one place randomness enters without a seed: picking the seed, which is printed.
    seed: Math.floor(Math.random() * 2 ** 31),
    workers: Math.max(1, Math.min(availableParallelism(), 8)),
    verbose: false,
    variant: undefined,
    results: undefined,
  };
  for (let i = 0; i < argv.length; i += 1) {
    const name = argv[i];
    const value = () => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 0) throw new Error(`${name} needs a whole number`);
      return v;
    };
    if (name === '--schedules') args.schedules = value();
    else if (name === '--seed') args.seed = value();
    else if (name === '--workers') args.workers = Math.max(1, value());
    else if (name === '--verbose') args.verbose = true;
    else if (name === '--variant') {
      const variant = argv[++i];
      if (!BROKEN_VARIANTS.some((v) => v.name === variant)) {
        throw new Error(`--variant is one of ${BROKEN_VARIANTS.map((v) => v.name).join(', ')}`);
      }
      args.variant = variant;
    } else if (name === '--results') {
      const file = argv[++i];
      if (!file) throw new Error('--results needs a file name');
      args.results = file;
    } else {
      throw new Error(
        `unknown argument ${name}; usage: --schedules N [--seed S] [--workers W] [--verbose] [--variant NAME] [--results FILE]`,
      );
    }
  }
  return args;
}

interface Job {
  first: number;
  count: number;
  verbose: boolean;
  variant: string | undefined;
}

const PROGRESS_EVERY = 1000;

async function runRange(
  job: Job,
  onResult?: (r: ScheduleResult) => void,
  onProgress?: (done: number) => void,
): Promise<Summary> {
  const summary = emptySummary();
  for (let i = 0; i < job.count; i += 1) {
    const variant = BROKEN_VARIANTS.find((v) => v.name === job.variant);
    const result = await runSchedule(job.first + i, { trace: job.verbose, ...(variant ? { variant } : {}) });
    summarize(summary, result);
    onResult?.(result);
    if ((i + 1) % PROGRESS_EVERY === 0) onProgress?.(PROGRESS_EVERY);
  }
  return summary;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  console.log(
    `simulate: ${args.schedules} schedule(s) from seed ${args.seed}${args.variant ? `, broken variant ${args.variant}` : ''} (Node ${process.versions.node})`,
  );
  const started = performance.now();
  let total = emptySummary();
  const workers = Math.min(args.workers, Math.max(1, Math.ceil(args.schedules / 50)));
  if (workers <= 1 || args.verbose) {
    const job = { first: args.seed, count: args.schedules, verbose: args.verbose, variant: args.variant };
    total = await runRange(job, (r) => {
      if (args.verbose) for (const line of r.trace ?? []) console.log(line);
    });
  } else {
    const per = Math.ceil(args.schedules / workers);
    let done = 0;
    const parts = await Promise.all(
      Array.from({ length: workers }, (_, w) => {
        const first = args.seed + w * per;
        const count = Math.max(0, Math.min(per, args.schedules - w * per));
        return new Promise<Summary>((resolve, reject) => {
          const worker = new Worker(new URL(import.meta.url), {
            workerData: { first, count, verbose: false, variant: args.variant } satisfies Job,
            execArgv: process.execArgv,
          });
          worker.on('message', (message: { progress: number } | { summary: Summary }) => {
            if ('summary' in message) {
              resolve(message.summary);
              return;
            }
            done += message.progress;
            const elapsed = (performance.now() - started) / 1000;
            console.log(`  ${done} schedules, ${elapsed.toFixed(0)} s`);
          });
          worker.once('error', reject);
        });
      }),
    );
    for (const part of parts) total = mergeSummary(total, part);
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(formatSummary(total, seconds, args.variant));
  if (args.results) {
    mkdirSync(dirname(args.results), { recursive: true });
    writeFileSync(args.results, `${JSON.stringify(toResults(total, args.seed), null, 2)}\n`);
    console.log(`figures written to ${args.results}`);
  }
  if (total.violationCount > 0) process.exitCode = 1;
  // A listed branch that never ran is a path this run proves nothing about (a replay or a variant is not judged so).
  // The rarest branches (a KooDrive revive) need about as many schedules as the CI run: a shorter run only says so.
  if (!args.verbose && !args.variant && missingBranches(total.coverage).length > 0) {
    if (args.schedules >= COVERAGE_SCHEDULES) process.exitCode = 1;
    else console.log(`(not judged below ${COVERAGE_SCHEDULES} schedules, where every listed branch runs)`);
  }
}

if (isMainThread) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 2;
  });
} else {
  void runRange(workerData as Job, undefined, (progress) => parentPort?.postMessage({ progress })).then(
    (summary) => parentPort?.postMessage({ summary }),
  );
}
