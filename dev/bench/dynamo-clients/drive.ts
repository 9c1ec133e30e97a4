/**
 * One DynamoDB client candidate in a fresh process (bundled with it by dynamo-clients.ts): the release path's
 * outcome write (a conditional UpdateItem) N times at concurrency C against dynalite, CPU measured per round; and
 * a failed condition, to see whether the candidate hands back the old item.
 */
export interface Target {
  endpoint: string;
  region: string;
  table: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

/** The outcome write in DynamoDB's JSON shape, for lock `lockId`. */
export function outcomeWrite(table: string, lockId: string, now: number) {
  return {
    TableName: table,
    Key: { lockId: { S: lockId } },
    UpdateExpression:
      'SET #status = :released, userId = if_not_exists(userId, :userId), heartbeatAt = if_not_exists(heartbeatAt, :now), ' +
      'releaseAttempts = if_not_exists(releaseAttempts, :zero) + :attempts, #version = if_not_exists(#version, :zero) + :one, ' +
      'releasedAt = :now, expiresAt = :expiresAt REMOVE sweepShard',
    ConditionExpression: 'attribute_not_exists(lockId) OR NOT (#status IN (:released, :expired))',
    ExpressionAttributeNames: { '#status': 'status', '#version': 'version' },
    ExpressionAttributeValues: {
      ':released': { S: 'RELEASED' },
      ':expired': { S: 'EXPIRED' },
      ':userId': { S: 'bench-user' },
      ':now': { N: String(now) },
      ':zero': { N: '0' },
      ':one': { N: '1' },
      ':attempts': { N: '1' },
      ':expiresAt': { N: String(Math.floor(now / 1000) + 604800) },
    },
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
  };
}

export type Write = ReturnType<typeof outcomeWrite>;

/** What each candidate provides: the write, and what a failed condition gave back. */
export interface Candidate {
  update(input: Write): Promise<void>;
  /** Resolves with the old item the candidate exposes for a failed condition (undefined when it exposes none). */
  conditionFailure(input: Write): Promise<unknown>;
  close(): Promise<void>;
}

export async function drive(
  make: (target: Target) => Candidate,
  options: Target & { n: number; concurrency: number; rounds: number; warmup: number; probe?: string },
): Promise<{ cpuMsPerRequest: number[]; wallMs: number[]; oldItem: unknown }> {
  const candidate = make(options);
  const run = async (count: number, prefix: string) => {
    let next = 0;
    const now = Date.now();
    const lane = async () => {
      for (let i = next++; i < count; i = next++)
        await candidate.update(outcomeWrite(options.table, `${prefix}-${i}`, now));
    };
    await Promise.all(Array.from({ length: options.concurrency }, lane));
  };
  await run(options.warmup, `warm-${process.pid}`);
  const cpuMsPerRequest: number[] = [];
  const wallMs: number[] = [];
  for (let round = 0; round < options.rounds; round++) {
    const cpu = process.cpuUsage();
    const startedAt = performance.now();
    await run(options.n, `r${round}-${process.pid}`);
    wallMs.push(performance.now() - startedAt);
    const used = process.cpuUsage(cpu);
    cpuMsPerRequest.push((used.user + used.system) / 1000 / options.n);
  }
  let oldItem: unknown;
  if (options.probe) {
    const probe = make({ ...options, endpoint: options.probe });
    oldItem = await probe.conditionFailure(outcomeWrite(options.table, 'probe', Date.now()));
    await probe.close();
  }
  await candidate.close();
  return { cpuMsPerRequest, wallMs, oldItem };
}
