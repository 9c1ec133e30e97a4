/**
 * Fault injection through the REAL release handler against the local stack: batches of 200 locks meet a seeded
 * mix of transient 5xx, 429 with Retry-After, dropped connections, answers slower than KOODRIVE_TIMEOUT_MS,
 * KooDrive's "retry" code, permanent 4xx and authentication failures. For every seed, the answer must agree
 * with what the emulator saw and did: nothing lost, nothing claimed falsely, attempts bounded and counted
 * right, no attempt started too close to the deadline.
 *
 * A failing seed is in the test name and in every assertion message; replay it alone with
 * `FAULT_SEED=<seed> npx vitest run test/faults/fault-suite.test.ts`.
 * The faults a lock meets are a function of (seed, lock, attempt number) only, so they replay exactly; the
 * engine's backoff jitter (Math.random) and the scheduling are not seeded, so timings vary a little.
 */
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { lambdaContext } from '../../dev/lambda-context';
import type { Fault, FaultRequest, RecordedRequest } from '../../src/testing/koodrive-emulator';
import { applyEnv, LOCAL_USER_ID, startLocalStack, type LocalStack } from '../../dev/stack';
import { DEFAULT_ENGINE_OPTIONS } from '../../src/core/engine';
import type { LockResult, ReleaseReport } from '../../src/core/model';
import { handler } from '../../src/handlers/release';
import { resetApp } from '../../src/wiring';
import { seededRandom } from '../helpers/fakes';
import { sqsRecord } from '../helpers/events';

const DEFAULT_SEEDS = [4, 7, 9, 14, 27, 1, 19];
const SEEDS = process.env.FAULT_SEED ? [Number(process.env.FAULT_SEED)] : DEFAULT_SEEDS;
if (!SEEDS.every((seed) => Number.isSafeInteger(seed))) {
  throw new Error(`FAULT_SEED must be a whole number, got ${process.env.FAULT_SEED}`);
}

const LOCKS_PER_BATCH = 200;
const MAX_ATTEMPTS = 4;
// Long enough that a busy machine (two cores shared with other test files) does not make the client give up on a
// request the emulator is about to answer: the truth below assumes only injected latency outlasts the timeout.
const TIMEOUT_MS = 1000;
/** Longer than TIMEOUT_MS: the client gives up, the emulator still acts (an answer lost in transit). */
const SLOW_MS = 1300;
/** What the engine keeps free before the deadline when an attempt starts (no ledger in this stack). */
const RESERVE_MS = TIMEOUT_MS + DEFAULT_ENGINE_OPTIONS.safetyMarginMs;
/** Between the engine's deadline check and the request's arrival at the emulator: signing, one loopback hop. */
const ARRIVAL_SLACK_MS = 250;

type Plan = 'clean' | 'flaky' | 'down' | 'permanent' | 'unknown' | 'expired';
/**
 * Authentication faults (APIGW.0301 401s): `probe` refuses the batch's first request once (a key still
 * propagating), `late` refuses every request for one lock late in the batch (a refusal about that lock), `broken`
 * refuses every request (credentials KooDrive does not know).
 */
type AuthMode = 'none' | 'probe' | 'late' | 'broken';

interface Scenario {
  seed: number;
  auth: AuthMode;
  /** The Lambda timeout given to the handler; short ones make the deadline bite. */
  lambdaTimeoutMs: number;
  concurrency: number;
}

/** Everything about a seed that is not per lock: derived from the seed alone, so FAULT_SEED replays it. */
function scenario(seed: number): Scenario {
  const rng = seededRandom(seed ^ 0x5eed);
  const a = rng();
  const d = rng();
  const short = d < 0.4;
  return {
    seed,
    auth: a < 0.4 ? 'none' : a < 0.6 ? 'late' : a < 0.8 ? 'probe' : 'broken',
    lambdaTimeoutMs: short ? 3500 : 60_000,
    concurrency: short ? 4 : 24,
  };
}

function mix(seed: number, i: number): number {
  return (Math.imul(seed, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b)) >>> 0;
}

const TRANSIENT: ((rng: () => number) => Fault)[] = [
  () => ({ type: 'status', status: 503 }),
  (rng) => ({ type: 'status', status: rng() < 0.5 ? 500 : 502 }),
  (rng) => ({ type: 'throttle', retryAfterSeconds: rng() < 0.5 ? 0 : 1 }),
  () => ({ type: 'status', status: 503, retryAfter: '1' }),
  () => ({ type: 'drop' }),
  () => ({ type: 'latency', ms: SLOW_MS }),
  () => ({ type: 'internal' }),
];
const PERMANENT: Fault[] = [
  { type: 'status', status: 400, body: { code: 13000102, msg: 'parameter check failed' } },
  { type: 'status', status: 404 },
  { type: 'status', status: 409, body: { code: 13000999, msg: 'conflict' } },
];
const AUTH_FAULT: Fault = {
  type: 'status',
  status: 401,
  body: { error_code: 'APIGW.0301', error_msg: 'Incorrect app authentication information: injected' },
};

interface LockPlan {
  lockId: string;
  plan: Plan;
  /** The fault for attempt n (1-based) of this lock; undefined = no fault. */
  faultFor: (attempt: number) => Fault | undefined;
}

/** How the locks of a batch are planned: cumulative shares (35% clean, 35% flaky, 10% down, …). */
const PLAN_SHARES: [Plan, number][] = [
  ['clean', 0.35],
  ['flaky', 0.7],
  ['down', 0.8],
  ['permanent', 0.87],
  ['unknown', 0.95],
  ['expired', 1],
];

function planLocks(seed: number, prefix: string, count: number): LockPlan[] {
  return Array.from({ length: count }, (_, i) => {
    const rng = seededRandom(mix(seed, prefix === 'd' ? i : i + 100_000));
    const r = rng();
    const plan = PLAN_SHARES.find(([, upTo]) => r < upTo)?.[0] ?? 'expired';
    const lockId = `fault-${seed}-${prefix}${String(i).padStart(3, '0')}@102`;
    const faults: (Fault | undefined)[] = [];
    const transient = () =>
      (TRANSIENT[Math.floor(rng() * TRANSIENT.length)] as (r: () => number) => Fault)(rng);
    for (let attempt = 1; attempt <= MAX_ATTEMPTS + 2; attempt++) {
      if (plan === 'down' || (plan === 'flaky' && rng() < 0.5)) faults.push(transient());
      else if (plan === 'permanent' && attempt === 1)
        faults.push(PERMANENT[Math.floor(rng() * PERMANENT.length)]);
      else if (plan === 'unknown' && rng() < 0.3) faults.push(transient());
      else faults.push(undefined);
    }
    return { lockId, plan, faultFor: (attempt) => faults[attempt - 1] };
  });
}

let stack: LocalStack;
let restoreEnv: () => void;

/** What the runs met and concluded, over every seed: the coverage check at the end reads it. */
const covered = new Map<string, number>();
const count = (key: string): void => {
  covered.set(key, (covered.get(key) ?? 0) + 1);
};

beforeAll(async () => {
  stack = await startLocalStack();
});
afterAll(async () => {
  await stack.close();
});
beforeEach(() => {
  stack.koodrive.reset();
});
afterEach(() => {
  restoreEnv();
  resetApp();
  stack.koodrive.reset();
});

interface Run {
  scenario: Scenario;
  plans: Map<string, LockPlan>;
  /** Requests per lock, in arrival order (after the in-flight ones finished). */
  requestsFor: (lockId: string) => RecordedRequest[];
  deadline: number;
  answeredAt: number;
  authLockId: string | undefined;
}

/** Seeds the locks, installs the fault policy, runs the handler on `event(plans)` and waits for stragglers. */
async function run<T>(
  sc: Scenario,
  prefix: 'd' | 's',
  event: (plans: LockPlan[]) => unknown,
): Promise<{ answer: T; run: Run }> {
  restoreEnv = applyEnv({
    ...stack.env,
    LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    RELEASE_CONCURRENCY: String(sc.concurrency),
    RELEASE_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    KOODRIVE_TIMEOUT_MS: String(TIMEOUT_MS),
  });
  resetApp();
  const plans = planLocks(sc.seed, prefix, LOCKS_PER_BATCH);
  const byId = new Map(plans.map((p) => [p.lockId, p]));
  for (const p of plans) {
    if (p.plan === 'unknown') continue;
    const expiresAt = p.plan === 'expired' ? Date.now() - 1000 : undefined;
    stack.koodrive.seedLock(LOCAL_USER_ID, '102', { lockId: p.lockId, ...(expiresAt ? { expiresAt } : {}) });
  }
  const authLockId =
    sc.auth === 'none' ? undefined : (plans[sc.auth === 'probe' ? 0 : 150] as LockPlan).lockId;
  const attemptsSeen = new Map<string, number>();
  let arrivals = 0;
  let firstRequest = true;
  stack.koodrive.setFaultPolicy((req: FaultRequest) => {
    arrivals += 1;
    const lockId = req.lockId ?? '';
    const n = (attemptsSeen.get(lockId) ?? 0) + 1;
    attemptsSeen.set(lockId, n);
    const probe = firstRequest;
    firstRequest = false;
    if (sc.auth === 'broken') return AUTH_FAULT;
    if (sc.auth === 'probe' && probe) return AUTH_FAULT;
    if (sc.auth === 'late' && lockId === authLockId) return AUTH_FAULT;
    return byId.get(lockId)?.faultFor(n);
  });

  const context = lambdaContext('release', sc.lambdaTimeoutMs);
  const deadline = Date.now() + context.getRemainingTimeInMillis();
  const answer = (await handler(event(plans), context)) as T;
  const answeredAt = Date.now();
  // Slow requests the client gave up on are still running in the emulator: wait until each one is recorded.
  const waitUntil = Date.now() + 5000;
  while (stack.koodrive.requests.length < arrivals && Date.now() < waitUntil) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  expect(stack.koodrive.requests.length, `seed ${sc.seed}: every request the emulator took is recorded`).toBe(
    arrivals,
  );
  const requests = new Map<string, RecordedRequest[]>();
  for (const r of stack.koodrive.requests) {
    const key = r.lockId ?? '';
    requests.set(key, [...(requests.get(key) ?? []), r]);
  }
  for (const req of stack.koodrive.requests) {
    if (req.fault === 'status') count(`fault: HTTP ${req.status}`);
    else if (req.fault) count(`fault: ${req.fault}`);
  }
  // Recorded in order of completion; a slow request completes after later ones: order by arrival.
  for (const list of requests.values()) list.sort((x, y) => x.at - y.at);
  return {
    answer,
    run: {
      scenario: sc,
      plans: byId,
      requestsFor: (lockId) => requests.get(lockId) ?? [],
      deadline,
      answeredAt,
      authLockId,
    },
  };
}

/**
 * What the emulator says the engine must have concluded for a lock: its last request (in arrival order) is the
 * answer the engine acted on, unless the client had given up on it (a slow answer) or it was dropped.
 */
function truthFor(r: Run, lockId: string): Truth {
  return answerOf(r.requestsFor(lockId).at(-1));
}

type Truth = 'released' | 'alreadyReleased' | 'notReleased';

function answerOf(req: RecordedRequest | undefined): Truth {
  if (!req || !req.authOk || req.fault === 'latency') return 'notReleased';
  if (req.status === 200) return 'released';
  if (req.status === 400) return 'alreadyReleased'; // the emulator's "resource does not exist"
  return 'notReleased';
}

/**
 * The conclusions the emulator allows for a lock. One request: exactly its answer. Several: the last one's, or,
 * because the client and the emulator share one event loop, a request the client gave up on (the loop stalled
 * past the timeout on a busy machine) may be handled after the next one; then any answer this lock got, or none.
 */
function possibleTruths(r: Run, lockId: string): Set<Truth> {
  const requests = r.requestsFor(lockId);
  const truths = new Set<Truth>([truthFor(r, lockId)]);
  if (requests.length > 1) {
    for (const req of requests) truths.add(answerOf(req));
    truths.add('notReleased');
  }
  return truths;
}

/** The checks every seed and both variants share, for one lock's result. */
function checkLock(r: Run, result: LockResult): void {
  const sc = r.scenario;
  const at = `seed ${sc.seed}, lock ${result.lockId} (${r.plans.get(result.lockId)?.plan}), result ${JSON.stringify(result)}`;
  const requests = r.requestsFor(result.lockId);
  const allowed = allowedAttempts(requests);
  expect(result.attempts, `${at}: attempts ≤ RELEASE_MAX_ATTEMPTS (+1 after a refusal)`).toBeLessThanOrEqual(
    allowed,
  );
  expect(result.attempts, `${at}: attempts = requests the emulator received`).toBe(requests.length);

  const held = stack.koodrive.isHeld(result.lockId);
  if (result.outcome === 'released' || result.outcome === 'alreadyReleased') {
    expect(held, `${at}: reported ${result.outcome} but the emulator still holds it`).toBe(false);
  }
  if (held) expect(result.outcome, `${at}: still held, so it must be failed`).toBe('failed');
  if (result.outcome === 'released') {
    expect(stack.koodrive.lock(result.lockId)?.releasedAt, `${at}: released by the emulator`).toBeDefined();
  }
  const reported = result.outcome === 'failed' ? 'notReleased' : result.outcome;
  expect(
    [...possibleTruths(r, result.lockId)],
    `${at}: the outcome is what the last answer KooDrive gave says`,
  ).toContain(reported);

  for (const req of requests) {
    expect(req.at, `${at}: no request after the deadline margin`).toBeLessThanOrEqual(
      r.deadline - RESERVE_MS + ARRIVAL_SLACK_MS,
    );
  }
  if (result.outcome !== 'failed') return;
  const kind = result.error?.kind;
  switch (kind) {
    case 'retryable':
      expect(result.attempts, `${at}: retryable failures use every attempt`).toBe(allowed);
      break;
    case 'permanent': {
      const last = requests.at(-1);
      expect(last?.fault, `${at}: permanent only after an injected 4xx`).toBe('status');
      expect(last?.status, `${at}: permanent only after a 4xx`).toBeGreaterThanOrEqual(400);
      expect(last?.status, `${at}: permanent only after a 4xx`).toBeLessThan(429);
      expect(r.plans.get(result.lockId)?.plan, at).toBe('permanent');
      break;
    }
    case 'auth':
      // A lock fails as auth only when refused again after the re-read (or when refusals showed the
      // credentials broken): never after the one transient refusal of the probe mode.
      expect(['late', 'broken'], `${at}: auth failures only when refusals persist`).toContain(sc.auth);
      if (sc.auth === 'late') expect(result.lockId, `${at}: only the refused lock`).toBe(r.authLockId);
      break;
    case 'deadline':
      expect(sc.lambdaTimeoutMs, `${at}: deadline failures only under a short Lambda timeout`).toBeLessThan(
        60_000,
      );
      break;
    default:
      throw new Error(`${at}: unexpected error kind ${kind}`);
  }
}

/** Checks that concern the whole run. */
function checkRun(r: Run, results: readonly LockResult[]): void {
  const sc = r.scenario;
  // The answer comes back with the safety margin still free (no attempt nor backoff ran into it).
  expect(r.answeredAt, `seed ${sc.seed}: answered before deadline − safety margin`).toBeLessThanOrEqual(
    r.deadline - DEFAULT_ENGINE_OPTIONS.safetyMarginMs + ARRIVAL_SLACK_MS,
  );
  for (const x of results) count(`outcome: ${x.outcome}${x.error ? ` (${x.error.kind})` : ''}`);
  const failures = results.filter((x) => x.outcome === 'failed');
  const authLock = r.authLockId === undefined ? [] : r.requestsFor(r.authLockId);
  if (sc.auth === 'broken') {
    // Credentials KooDrive never accepts: the first lock, its retry after the re-read, and a second lock refused
    // too show them broken; nothing else is sent and every lock fails (as auth, or for lack of time).
    expect(
      stack.koodrive.requests.length,
      `seed ${sc.seed}: no storm of refused requests`,
    ).toBeLessThanOrEqual(3);
    expect(failures.length, `seed ${sc.seed}`).toBe(results.length);
    expect(
      failures.every((x) => x.error?.kind === 'auth' || x.error?.kind === 'deadline'),
      `seed ${sc.seed}`,
    ).toBe(true);
  }
  if (sc.auth === 'probe' && authLock.length > 0) {
    // The batch's first request met a 401: that lock was retried after the re-read, and the batch went on.
    expect(authLock[0]?.status, `seed ${sc.seed}: the probe met the 401`).toBe(401);
    expect(authLock.length, `seed ${sc.seed}: the refused lock is retried`).toBeGreaterThan(1);
    expect(
      failures.filter((x) => x.error?.kind === 'auth'),
      `seed ${sc.seed}: no auth failure`,
    ).toEqual([]);
  }
  if (sc.auth === 'late' && authLock.length > 0) {
    // One lock refused on every request: it alone fails as auth, after its retry; the batch goes on.
    const authResult = results.find((x) => x.lockId === r.authLockId);
    if (authLock.length === 2) {
      expect(authResult?.error?.kind, `seed ${sc.seed}: the lock refused twice`).toBe('auth');
    }
    expect(
      failures.filter((x) => x.error?.kind === 'auth').map((x) => x.lockId),
      `seed ${sc.seed}: no other lock fails as auth`,
    ).toEqual(authLock.length === 2 ? [r.authLockId] : []);
  }
}

/** RELEASE_MAX_ATTEMPTS, plus the one retry after a refusal when a request of the lock met a 401. */
function allowedAttempts(requests: readonly RecordedRequest[]): number {
  return MAX_ATTEMPTS + (requests.some((req) => req.status === 401) ? 1 : 0);
}

describe.each(SEEDS.map(scenario))(
  'fault suite, seed $seed (auth fault: $auth, Lambda timeout $lambdaTimeoutMs ms, concurrency $concurrency)',
  (sc) => {
    it(`direct invoke, ${LOCKS_PER_BATCH} locks: seed ${sc.seed}`, async () => {
      const { answer: report, run: r } = await run<ReleaseReport>(sc, 'd', (plans) => ({
        locks: plans.map((p) => ({ lockId: p.lockId, userId: LOCAL_USER_ID })),
      }));
      const where = `seed ${sc.seed}`;
      expect(report.error, where).toBeUndefined();
      expect(report.results, where).toHaveLength(LOCKS_PER_BATCH);
      const ids = report.results.map((x) => x.lockId);
      expect(new Set(ids).size, `${where}: each lock appears exactly once`).toBe(LOCKS_PER_BATCH);
      expect(new Set(ids), where).toEqual(new Set(r.plans.keys()));
      const { summary } = report;
      expect(summary.requested, where).toBe(LOCKS_PER_BATCH);
      expect(summary.released + summary.alreadyReleased + summary.failed, where).toBe(LOCKS_PER_BATCH);
      for (const result of report.results) checkLock(r, result);
      checkRun(r, report.results);
      // No lock the batch did not name was touched.
      for (const req of stack.koodrive.requests) expect(r.plans.has(req.lockId ?? ''), where).toBe(true);
    });

    it(`SQS batch, ${LOCKS_PER_BATCH} records with duplicates and malformed bodies: seed ${sc.seed}`, async () => {
      const malformed = ['not json', '{"lockId": "bad id"}', '[]', '{"lockId": 5}', '{"userId": "x"}'];
      let records: SQSRecord[] = [];
      let lockOf: (string | undefined)[] = [];
      const { answer, run: r } = await run<SQSBatchResponse>(sc, 's', (plans) => {
        const rng = seededRandom(sc.seed ^ 0x505);
        const bodies: { body: string; lockId: string | undefined }[] = [];
        for (const p of plans.slice(0, LOCKS_PER_BATCH - 20)) {
          bodies.push({
            body: JSON.stringify({ lockId: p.lockId, userId: LOCAL_USER_ID }),
            lockId: p.lockId,
          });
        }
        for (let i = 0; i < 10; i++) {
          const p = plans[Math.floor(rng() * (LOCKS_PER_BATCH - 20))] as LockPlan;
          bodies.push({ body: JSON.stringify({ lockId: p.lockId }), lockId: p.lockId }); // default user
        }
        for (let i = 0; i < 10; i++)
          bodies.push({ body: malformed[i % malformed.length] as string, lockId: undefined });
        // Shuffled (seeded): duplicates and bad records anywhere in the batch.
        for (let i = bodies.length - 1; i > 0; i--) {
          const j = Math.floor(rng() * (i + 1));
          [bodies[i], bodies[j]] = [
            bodies[j] as (typeof bodies)[number],
            bodies[i] as (typeof bodies)[number],
          ];
        }
        records = bodies.map((b, i) => sqsRecord(`msg-${sc.seed}-${i}`, b.body));
        lockOf = bodies.map((b) => b.lockId);
        return { Records: records } satisfies SQSEvent;
      });
      const where = `seed ${sc.seed}`;
      const named = new Set(lockOf.filter((x): x is string => x !== undefined));
      // Each distinct lock was attempted as one lock: its requests are those of a single release.
      for (const lockId of named) {
        expect(r.requestsFor(lockId).length, `${where}: ${lockId} attempts`).toBeLessThanOrEqual(
          allowedAttempts(r.requestsFor(lockId)),
        );
        const held = stack.koodrive.isHeld(lockId);
        if (held) expect(truthFor(r, lockId), `${where}: ${lockId} is held`).toBe('notReleased');
        for (const req of r.requestsFor(lockId)) {
          expect(req.at, `${where}: ${lockId}: no request after the deadline margin`).toBeLessThanOrEqual(
            r.deadline - RESERVE_MS + ARRIVAL_SLACK_MS,
          );
        }
      }
      const failures = answer.batchItemFailures.map((f) => f.itemIdentifier);
      expect(new Set(failures).size, `${where}: no record listed twice`).toBe(failures.length);
      const failed = new Set(failures);
      records.forEach((rec, i) => {
        const lockId = lockOf[i];
        const truths = lockId === undefined ? new Set<Truth>(['notReleased']) : possibleTruths(r, lockId);
        const reported: Truth[] = failed.has(rec.messageId)
          ? ['notReleased']
          : ['released', 'alreadyReleased'];
        // listed in batchItemFailures exactly when its lock was not released (as far as the emulator can tell)
        expect(
          reported.some((x) => truths.has(x)),
          `${where}: record ${rec.messageId} (${lockId ?? 'malformed'}) ${failed.has(rec.messageId) ? 'listed' : 'not listed'}, emulator: ${[...truths].join('/')}`,
        ).toBe(true);
      });
      expect(
        [...failed].every((id) => records.some((rec) => rec.messageId === id)),
        where,
      ).toBe(true);
      expect(r.answeredAt, where).toBeLessThanOrEqual(
        r.deadline - DEFAULT_ENGINE_OPTIONS.safetyMarginMs + ARRIVAL_SLACK_MS,
      );
      count(`sqs: ${answer.batchItemFailures.length > 0 ? 'some records failed' : 'no record failed'}`);
      for (const req of stack.koodrive.requests) expect(named.has(req.lockId ?? ''), where).toBe(true);
    });
  },
);

describe.skipIf(process.env.FAULT_SEED !== undefined)('the default seeds', () => {
  it('met every fault class and produced every outcome', () => {
    const summary = [...covered].sort(([a], [b]) => a.localeCompare(b));
    console.log(
      `fault suite, seeds ${DEFAULT_SEEDS.join(', ')}:\n${summary.map(([k, n]) => `  ${k}: ${n}`).join('\n')}`,
    );
    const keys = new Set(covered.keys());
    for (const needed of [
      'fault: HTTP 500',
      'fault: HTTP 502',
      'fault: HTTP 503',
      'fault: throttle',
      'fault: drop',
      'fault: latency',
      'fault: internal',
      'fault: HTTP 400',
      'fault: HTTP 404',
      'fault: HTTP 409',
      'fault: HTTP 401',
      'outcome: released',
      'outcome: alreadyReleased',
      'outcome: failed (retryable)',
      'outcome: failed (permanent)',
      'outcome: failed (auth)',
      'outcome: failed (deadline)',
      'sqs: some records failed',
    ]) {
      expect(keys, `the default seeds never produced "${needed}"`).toContain(needed);
    }
  });
});
