/**
 * The DynamoDB client candidates compared in one run on one machine: each bundled alone (esbuild, minified CJS, as
 * the functions are built), its bundle size, its module load (median of fresh processes), and its CPU per request
 * for the release path's outcome write (a conditional UpdateItem) at concurrency C against dynalite in this
 * process; plus whether a failed condition hands back the old item (a scripted DynamoDB answer with `Item`).
 */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import { closerOf, listenOnLoopback } from '../../../src/testing/loopback';
import { cleanEnv } from '../bundle';
import type { Harness } from '../harness';
import { median, ms } from '../report';

const CANDIDATES = {
  'aws4-undici': 'SigV4 by aws4 over an undici Pool (src/ledger/dynamo-http.ts, the choice)',
  'aws-lite': '@aws-lite/client + @aws-lite/dynamodb',
  aws4fetch: 'SigV4 by aws4fetch (WebCrypto) over an undici Pool',
  sdk: '@aws-sdk/client-dynamodb through src/ledger/dynamo-sdk.ts (the functions until now)',
} as const;
type CandidateName = keyof typeof CANDIDATES;

interface ClientFigures {
  name: CandidateName;
  bundleBytes: number;
  loadMs: number;
  cpuMsPerRequest: number[];
  wallMs: number[];
  oldItemOnConditionFailure: boolean;
}

const OLD_ITEM = { lockId: { S: 'probe' }, status: { S: 'RELEASED' } };

/** A server answering every request as DynamoDB answers a failed condition with ReturnValuesOnConditionCheckFailure. */
async function conditionFailingServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
      response.end(
        JSON.stringify({
          __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException',
          message: 'The conditional request failed',
          Item: OLD_ITEM,
        }),
      );
    });
  });
  return { url: await listenOnLoopback(server), close: closerOf(server) };
}

function node(args: string[], env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`candidate failed: ${err.slice(-2000)}`)),
    );
  });
}

/** Loads the bundle in a fresh process: prints the ms require() took, then runs it when BENCH_OPTIONS is set. */
const HOST = `
const t = performance.now();
const m = require(process.env.BENCH_FILE);
const loadMs = performance.now() - t;
if (!process.env.BENCH_OPTIONS) { process.stdout.write(JSON.stringify({ loadMs })); }
else m.run(JSON.parse(process.env.BENCH_OPTIONS)).then((r) => process.stdout.write(JSON.stringify({ loadMs, ...r })));
`;

export async function dynamodbClients(h: Harness): Promise<void> {
  const sizes = h.sizes.clients;
  const dynamo = h.ledgerDb;
  const probe = await conditionFailingServer();
  const figures: ClientFigures[] = [];
  try {
    for (const name of Object.keys(CANDIDATES) as CandidateName[]) {
      const file = join(h.scratch, `client-${name}.cjs`);
      await esbuild.build({
        entryPoints: [join(import.meta.dirname, '..', 'dynamo-clients', `${name}.ts`)],
        outfile: file,
        bundle: true,
        minify: true,
        format: 'cjs',
        platform: 'node',
        target: 'node24',
        mainFields: ['module', 'main'],
        logLevel: 'error',
      });
      h.log(
        `DynamoDB client ${name}: load (${sizes.loadRuns} fresh processes), then ${sizes.rounds} × ${sizes.n} writes`,
      );
      const loads: number[] = [];
      for (let i = 0; i < sizes.loadRuns; i++) {
        loads.push((JSON.parse(await node(['-e', HOST], { BENCH_FILE: file })) as { loadMs: number }).loadMs);
      }
      const options = {
        endpoint: dynamo.endpoint,
        region: 'us-east-1',
        table: dynamo.tableName,
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        probe: probe.url,
        ...sizes,
      };
      const result = JSON.parse(
        await node(['-e', HOST], { BENCH_FILE: file, BENCH_OPTIONS: JSON.stringify(options) }),
      ) as {
        cpuMsPerRequest: number[];
        wallMs: number[];
        oldItem: unknown;
      };
      figures.push({
        name,
        bundleBytes: statSync(file).size,
        loadMs: median(loads),
        cpuMsPerRequest: result.cpuMsPerRequest,
        wallMs: result.wallMs,
        oldItemOnConditionFailure: JSON.stringify(result.oldItem) === JSON.stringify(OLD_ITEM),
      });
    }
  } finally {
    await probe.close();
  }
  h.add('update', {
    what: `DynamoDB clients alone (each bundled alone, minified CJS): the outcome write (conditional UpdateItem) ${sizes.rounds} × ${sizes.n} at C=${sizes.concurrency} against dynalite; load median of ${sizes.loadRuns} fresh processes`,
    goal: '—',
    measured: figures
      .map(
        (c) =>
          `${c.name}: ${c.cpuMsPerRequest.map((v) => v.toFixed(3)).join('/')} ms CPU per request, load ${ms(c.loadMs)}, ${(c.bundleBytes / 1024).toFixed(0)} KB, old item on a failed condition: ${c.oldItemOnConditionFailure ? 'yes' : 'no'} (${CANDIDATES[c.name]})`,
      )
      .join('; '),
    value: median(figures.find((c) => c.name === 'aws4-undici')?.cpuMsPerRequest ?? [NaN]),
  });
}
