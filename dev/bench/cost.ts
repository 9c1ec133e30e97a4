/**
 * The cost model (docs/benchmarks.md, "Cost"): list prices times the request counts the benchmark measured.
 * Pure arithmetic; every figure it prints names its inputs so the README can show the formula next to it.
 */

/**
 * AWS list prices, us-east-1, pay-per-use tiers beyond any free tier. DynamoDB on-demand after the November 2024
 * reduction; Lambda arm64 first duration tier; SQS standard queue; Secrets Manager per API call. Scheduled
 * EventBridge rules (what serverless.yml's `schedule` event creates) invoke Lambda at no charge.
 */
export const PRICES = {
  checked: '2026-11 (AWS pricing pages, us-east-1)',
  dynamoWriteUnit: 0.625 / 1e6,
  dynamoReadUnit: 0.125 / 1e6,
  lambdaGbSecondArm: 0.0000133334,
  lambdaRequest: 0.2 / 1e6,
  /** Per request; each started 64 KB of a message's payload is one request. */
  sqsRequest: 0.4 / 1e6,
  secretsManagerCall: 0.05 / 1e4,
  eventBridgeScheduledInvocation: 0,
} as const;

/** Seconds in a 30-day month. */
export const MONTH_SECONDS = 30 * 24 * 3600;
/** Lambda gives a function one vCPU at 1,769 MB; below that, CPU time stretches by 1769 / memory. */
export const MB_PER_VCPU = 1769;

export interface Line {
  item: string;
  quantity: number;
  unit: string;
  usd: number;
}

export interface Bill {
  lines: Line[];
  usd: number;
}

const bill = (lines: Line[]): Bill => ({ lines, usd: lines.reduce((sum, l) => sum + l.usd, 0) });

export const dynamoLines = (wu: number, ru: number): Line[] => [
  { item: 'DynamoDB write request units', quantity: wu, unit: 'WRU', usd: wu * PRICES.dynamoWriteUnit },
  { item: 'DynamoDB read request units', quantity: ru, unit: 'RRU', usd: ru * PRICES.dynamoReadUnit },
];

/** One lock's ledger cost over its life (acquire, heartbeats, release), from the measured units. */
export function lifecycleBill(wu: number, ru: number): Bill {
  return bill(dynamoLines(wu, ru));
}

export interface SqsReleaseInputs {
  releases: number;
  /** serverless.yml: the SQS event's batchSize. */
  batchSize: number;
  /** serverless.yml: the release function's memorySize. */
  memoryMb: number;
  /** Handler CPU per released lock (ms, measured on one vCPU). */
  cpuMsPerLock: number;
  /** KooDrive's answer time for one DELETE in production (an assumption the README states). */
  koodriveLatencyMs: number;
  /** One DynamoDB request's latency in-region (an assumption). */
  dynamoLatencyMs: number;
  /** Parallel DELETEs per invocation (RELEASE_CONCURRENCY). */
  concurrency: number;
  /** Measured DynamoDB units per released lock on the release path. */
  wuPerRelease: number;
  ruPerRelease: number;
  /** SQS requests per message: a send (unless producers batch) plus the receive and delete per batch. */
  producersBatchSends: boolean;
  /** The secret cache's TTL and how many containers work the queue (maximumConcurrency). */
  secretCacheSeconds: number;
  containers: number;
}

export interface SqsReleaseBill extends Bill {
  invocations: number;
  durationMsPerInvocation: number;
  gbSeconds: number;
  sqsRequests: number;
  secretReads: number;
  drainSeconds: number;
}

/**
 * A million releases through SQS, all in. Duration per invocation: the KooDrive rounds (batch / concurrency,
 * rounded up) × the KooDrive latency + one ledger write + the handler's CPU stretched to the function's CPU share.
 */
export function sqsReleaseBill(x: SqsReleaseInputs): SqsReleaseBill {
  const invocations = Math.ceil(x.releases / x.batchSize);
  const rounds = Math.ceil(x.batchSize / x.concurrency);
  const cpuStretch = MB_PER_VCPU / Math.min(x.memoryMb, MB_PER_VCPU);
  const durationMs = Math.ceil(
    rounds * x.koodriveLatencyMs + x.dynamoLatencyMs + x.cpuMsPerLock * x.batchSize * cpuStretch,
  );
  const gbSeconds = (invocations * durationMs * x.memoryMb) / 1024 / 1000;
  const sends = x.producersBatchSends ? Math.ceil(x.releases / 10) : x.releases;
  // Lambda's pollers receive a batch per ReceiveMessage and delete it with one DeleteMessageBatch.
  const sqsRequests = sends + 2 * invocations;
  const drainSeconds = (invocations * durationMs) / 1000 / x.containers;
  const secretReads = x.containers * Math.max(1, Math.ceil(drainSeconds / x.secretCacheSeconds));
  const lines: Line[] = [
    {
      item: `Lambda duration (${x.memoryMb} MB, ${durationMs} ms per invocation)`,
      quantity: gbSeconds,
      unit: 'GB-s',
      usd: gbSeconds * PRICES.lambdaGbSecondArm,
    },
    {
      item: 'Lambda requests',
      quantity: invocations,
      unit: 'requests',
      usd: invocations * PRICES.lambdaRequest,
    },
    {
      item: `SQS requests (${x.producersBatchSends ? 'SendMessageBatch of 10' : 'one SendMessage per lock'}, receive + delete per batch of ${x.batchSize})`,
      quantity: sqsRequests,
      unit: 'requests',
      usd: sqsRequests * PRICES.sqsRequest,
    },
    ...dynamoLines(x.wuPerRelease * x.releases, x.ruPerRelease * x.releases),
    {
      item: `Secrets Manager GetSecretValue (${x.containers} containers, cache ${x.secretCacheSeconds} s, ${Math.round(drainSeconds)} s of work)`,
      quantity: secretReads,
      unit: 'calls',
      usd: secretReads * PRICES.secretsManagerCall,
    },
    { item: 'EventBridge (not on this path)', quantity: 0, unit: 'invocations', usd: 0 },
  ];
  return {
    ...bill(lines),
    invocations,
    durationMsPerInvocation: durationMs,
    gbSeconds,
    sqsRequests,
    secretReads,
    drainSeconds,
  };
}

export interface SweepMonthInputs {
  /** Sweeps per month (rate(1 minute): 43,200). */
  sweeps: number;
  /** Open locks the sweeps see. */
  openLocks: number;
  /** Measured read units of one sweep per 1,000 open locks with nothing stale, and its requests. */
  ruPerSweepPer1000: number;
  /** Duration of one sweep per 1,000 open locks (ms, measured) and the sweep's memory. */
  msPerSweepPer1000: number;
  fixedMsPerSweep: number;
  memoryMb: number;
  secretCacheSeconds: number;
  /** Heartbeats (ledger writes) of the open locks over the month, for the holders' side. */
  heartbeatSeconds: number;
  wuPerHeartbeat: number;
}

/** A month of sweeps (and of the holders' heartbeats) per `openLocks` open locks. */
export function sweepMonthBill(x: SweepMonthInputs): Bill & { heartbeats: Bill } {
  const per = x.openLocks / 1000;
  const ru = x.sweeps * x.ruPerSweepPer1000 * per;
  const durationS = (x.sweeps * (x.fixedMsPerSweep + x.msPerSweepPer1000 * per)) / 1000;
  const gbSeconds = (durationS * x.memoryMb) / 1024;
  const secretReads = Math.ceil(MONTH_SECONDS / x.secretCacheSeconds);
  const beats = (x.openLocks * MONTH_SECONDS) / x.heartbeatSeconds;
  return {
    ...bill([
      ...dynamoLines(0, ru),
      {
        item: `Lambda duration (${x.memoryMb} MB)`,
        quantity: gbSeconds,
        unit: 'GB-s',
        usd: gbSeconds * PRICES.lambdaGbSecondArm,
      },
      { item: 'Lambda requests', quantity: x.sweeps, unit: 'requests', usd: x.sweeps * PRICES.lambdaRequest },
      {
        item: 'EventBridge scheduled rule invocations',
        quantity: x.sweeps,
        unit: 'invocations',
        usd: x.sweeps * PRICES.eventBridgeScheduledInvocation,
      },
      {
        item: 'Secrets Manager GetSecretValue (one container)',
        quantity: secretReads,
        unit: 'calls',
        usd: secretReads * PRICES.secretsManagerCall,
      },
    ]),
    heartbeats: bill(dynamoLines(beats * x.wuPerHeartbeat, 0)),
  };
}

export const usd = (v: number): string =>
  v >= 100
    ? `$${v.toFixed(0)}`
    : v >= 1
      ? `$${v.toFixed(2)}`
      : v >= 0.01
        ? `$${v.toFixed(3)}`
        : `$${v.toPrecision(2)}`;

/** A bill as Markdown rows: item, quantity, cost. */
export function billRows(b: Bill): string[][] {
  return b.lines.map((l) => [
    l.item,
    `${l.quantity >= 100 ? Math.round(l.quantity).toLocaleString('en-US') : Number(l.quantity.toPrecision(3))} ${l.unit}`,
    usd(l.usd),
  ]);
}
