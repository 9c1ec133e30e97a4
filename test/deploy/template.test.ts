/**
 * The deployed wiring, read from the packaged CloudFormation template (`sls package`): least-privilege IAM,
 * the release queue's redrive and visibility timeout, the dead-letter queue's retention, the sweep's reserved
 * concurrency, the release event source mapping, the runtime and the ledger table.
 *
 * The service is packaged once, into a temporary folder (`sls package --package <dir>`). No AWS call is made:
 * packaging needs no account, the credentials are dummies and instance metadata is off.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ENGINE_OPTIONS } from '../../src/core/engine';
import {
  DEFAULT_CLOCK_SKEW_SECONDS,
  holderTiming,
  KOODRIVE_LOCK_SECONDS,
  SCHEDULE_JITTER_SECONDS,
  timeToFreeBoundSeconds,
} from '../../src/core/lease';

const ROOT = join(import.meta.dirname, '..', '..');
const SERVICE = 'koodrive-lock-releaser';
const STAGE = 'dev';

type Json = Record<string, unknown>;
interface Resource {
  Type: string;
  Properties: Json;
  DeletionPolicy?: string;
}
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  NotAction?: unknown;
  NotResource?: unknown;
}

let workDir: string;
let template: {
  Resources: Record<string, Resource>;
  Outputs?: Record<string, { Value: unknown; Export?: { Name: unknown } }>;
};

/** `sls package` into a fresh folder with `extra` arguments; the template, or the failed run's output. */
function packageService(extra: string[] = []): { template?: typeof template; output: string } {
  const out = mkdtempSync(join(workDir, 'package-'));
  const env: NodeJS.ProcessEnv = {
    PATH: `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`,
    HOME: process.env.HOME ?? workDir,
    AWS_ACCESS_KEY_ID: 'package-only',
    AWS_SECRET_ACCESS_KEY: 'package-only',
    AWS_EC2_METADATA_DISABLED: 'true',
    CI: '1',
  };
  const result = spawnSync('npx', ['sls', 'package', '--stage', STAGE, '--package', out, ...extra], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
    timeout: 110_000,
  });
  const output = `${result.stdout}\n${result.stderr}`;
  if (result.status !== 0)
    return { output: `sls package failed (${result.status ?? result.signal}):\n${output}` };
  return {
    output,
    template: JSON.parse(
      readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8'),
    ) as typeof template,
  };
}

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'koodrive-package-'));
  const packaged = packageService();
  if (!packaged.template) throw new Error(packaged.output);
  template = packaged.template;
}, 120_000);

afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

function resource(name: string): Resource {
  const found = template.Resources[name];
  if (!found) throw new Error(`the template has no resource ${name}`);
  return found;
}
function ofType(type: string): [string, Resource][] {
  return Object.entries(template.Resources).filter(([, r]) => r.Type === type);
}
const asList = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);
const getAtt = (name: string, attribute = 'Arn') => ({ 'Fn::GetAtt': [name, attribute] });

/** Every IAM statement of every role and policy in the template (`roleOnly`: the functions' role alone). */
function statements(roleOnly = false): Statement[] {
  const all: Statement[] = [];
  for (const [, r] of Object.entries(template.Resources)) {
    if (r.Type === 'AWS::IAM::Role') {
      for (const policy of (r.Properties.Policies as { PolicyDocument: { Statement: Statement[] } }[]) ??
        []) {
        all.push(...policy.PolicyDocument.Statement);
      }
    } else if (!roleOnly && (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy')) {
      all.push(...(r.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    }
  }
  return all;
}

/** A resource as text for wildcard checks: a plain ARN, an Fn::Sub template, or a GetAtt rendered as such. */
function resourceText(value: unknown): string {
  if (typeof value === 'string') return value;
  const sub = (value as { 'Fn::Sub'?: unknown })['Fn::Sub'];
  if (typeof sub === 'string') return sub;
  const att = (value as { 'Fn::GetAtt'?: unknown })['Fn::GetAtt'];
  if (Array.isArray(att)) return `\${${att.join('.')}}`;
  return JSON.stringify(value);
}

describe(`the packaged template (sls package --stage ${STAGE})`, () => {
  it('runs both functions on nodejs24.x', () => {
    const functions = ofType('AWS::Lambda::Function');
    expect(functions.map(([name]) => name).sort()).toEqual(['ReleaseLambdaFunction', 'SweepLambdaFunction']);
    for (const [name, fn] of functions) expect(fn.Properties.Runtime, name).toBe('nodejs24.x');
  });

  describe('IAM: least privilege', () => {
    it('one role, no managed policies on it, no inline policy resources besides it; the workers’ policy alone', () => {
      const roles = ofType('AWS::IAM::Role');
      expect(roles.map(([name]) => name)).toEqual(['IamRoleLambdaExecution']);
      expect(roles[0]?.[1].Properties.ManagedPolicyArns).toBeUndefined();
      expect(ofType('AWS::IAM::Policy')).toEqual([]);
      expect(ofType('AWS::IAM::ManagedPolicy').map(([name]) => name)).toEqual(['HolderPolicy']);
    });

    it('the workers’ policy: PutItem, UpdateItem and GetItem on the ledger table, GetSecretValue on the secret, its ARN an output', () => {
      const policy = resource('HolderPolicy');
      expect(policy.Properties.Roles ?? policy.Properties.Users ?? policy.Properties.Groups).toBeUndefined();
      const document = policy.Properties.PolicyDocument as { Version: string; Statement: Statement[] };
      expect(document.Version).toBe('2012-10-17');
      const pairs = document.Statement.flatMap((s) => {
        expect(s.Effect).toBe('Allow');
        return asList(s.Action).flatMap((action) =>
          asList(s.Resource).map((r) => `${action} ${resourceText(r)}`),
        );
      });
      const secretId = (resource('ReleaseLambdaFunction').Properties.Environment as { Variables: Json })
        .Variables.KOODRIVE_SECRET_ID;
      expect(pairs.sort()).toEqual([
        'dynamodb:GetItem ${LedgerTable.Arn}',
        'dynamodb:PutItem ${LedgerTable.Arn}',
        'dynamodb:UpdateItem ${LedgerTable.Arn}',
        `secretsmanager:GetSecretValue arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:${String(secretId)}-??????`,
      ]);
      expect(template.Outputs?.HolderPolicyArn).toEqual({
        Description: expect.any(String) as string,
        Value: { Ref: 'HolderPolicy' },
        Export: { Name: `${SERVICE}-${STAGE}-holder-policy-arn` },
      });
    });

    it('only Allow statements with explicit actions: no "*", no service:*, no NotAction/NotResource', () => {
      for (const statement of statements()) {
        expect(statement.Effect).toBe('Allow');
        expect(statement.NotAction).toBeUndefined();
        expect(statement.NotResource).toBeUndefined();
        for (const action of asList(statement.Action)) {
          expect(action, JSON.stringify(statement)).toMatch(/^[a-z0-9-]+:[A-Za-z]+$/);
        }
      }
    });

    it('no bare "*" resource; wildcards only in the generated log-group ARNs and the secret\'s 6-character suffix', () => {
      for (const statement of statements()) {
        for (const r of asList(statement.Resource)) {
          const text = resourceText(r);
          expect(text, JSON.stringify(statement)).not.toBe('*');
          if (text.includes('*')) {
            expect(
              asList(statement.Action).every((a) => a.startsWith('logs:')),
              text,
            ).toBe(true);
            expect(text).toMatch(
              new RegExp(
                `^arn:\\$\\{AWS::Partition\\}:logs:\\$\\{AWS::Region\\}:\\$\\{AWS::AccountId\\}:log-group:/aws/lambda/${SERVICE}-${STAGE}\\*:\\*(:\\*)?$`,
              ),
            );
          }
          if (text.includes('?')) expect(text).toMatch(/:secret:[^*?]+-\?{6}$/);
        }
      }
    });

    it('secretsmanager: GetSecretValue only, on the one secret the functions are told to read', () => {
      const grants = statements(true).filter((s) =>
        asList(s.Action).some((a) => a.startsWith('secretsmanager:')),
      );
      expect(grants).toHaveLength(1);
      const [grant] = grants as [Statement];
      expect(asList(grant.Action)).toEqual(['secretsmanager:GetSecretValue']);
      const resources = asList(grant.Resource).map(resourceText);
      const secretId = (resource('ReleaseLambdaFunction').Properties.Environment as { Variables: Json })
        .Variables.KOODRIVE_SECRET_ID;
      expect(secretId).toBe(`${SERVICE}/${STAGE}`);
      expect(resources).toEqual([
        `arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:${String(secretId)}-??????`,
      ]);
    });

    it('dynamodb: UpdateItem and BatchGetItem on the ledger table, Query on its openLocks and openByUser indexes, nothing else', () => {
      const grants = statements(true).filter((s) => asList(s.Action).some((a) => a.startsWith('dynamodb:')));
      const pairs = grants.flatMap((s) =>
        asList(s.Action).flatMap((action) => asList(s.Resource).map((r) => `${action} ${resourceText(r)}`)),
      );
      expect(pairs.sort()).toEqual([
        'dynamodb:BatchGetItem ${LedgerTable.Arn}',
        'dynamodb:Query ${LedgerTable.Arn}/index/openByUser',
        'dynamodb:Query ${LedgerTable.Arn}/index/openLocks',
        'dynamodb:UpdateItem ${LedgerTable.Arn}',
      ]);
    });

    it('sqs: only what the event source mapping needs, on the release queue', () => {
      const grants = statements().filter((s) => asList(s.Action).some((a) => a.startsWith('sqs:')));
      for (const grant of grants) {
        for (const action of asList(grant.Action)) {
          expect([
            'sqs:ReceiveMessage',
            'sqs:DeleteMessage',
            'sqs:GetQueueAttributes',
            'sqs:ChangeMessageVisibility',
          ]).toContain(action);
        }
        expect(asList(grant.Resource)).toEqual([getAtt('ReleaseQueue')]);
      }
    });

    it('every statement is one of: logs, the secret, the ledger, the release queue', () => {
      for (const statement of statements()) {
        const services = new Set(asList(statement.Action).map((a) => a.split(':')[0]));
        expect(services.size, JSON.stringify(statement)).toBe(1);
        expect(['logs', 'secretsmanager', 'dynamodb', 'sqs']).toContain([...services][0]);
      }
    });
  });

  describe('the release queue and its dead-letter queue', () => {
    it('redrives to the DLQ after 5 receives; the DLQ keeps messages 14 days', () => {
      expect(resource('ReleaseQueue').Properties.RedrivePolicy).toEqual({
        deadLetterTargetArn: getAtt('ReleaseDeadLetterQueue'),
        maxReceiveCount: 5,
      });
      expect(resource('ReleaseDeadLetterQueue').Properties.MessageRetentionPeriod).toBe(14 * 24 * 3600);
    });

    it('visibility timeout is at least six times the release function timeout', () => {
      const timeout = resource('ReleaseLambdaFunction').Properties.Timeout as number;
      expect(Number(resource('ReleaseQueue').Properties.VisibilityTimeout)).toBeGreaterThanOrEqual(
        6 * timeout,
      );
    });

    it('…plus the batching window, as AWS advises for a MaximumBatchingWindowInSeconds (Lambda guide, "with-sqs")', () => {
      const timeout = resource('ReleaseLambdaFunction').Properties.Timeout as number;
      const [[, mapping]] = releaseMappings() as [[string, Resource]];
      const window = Number(mapping.Properties.MaximumBatchingWindowInSeconds ?? 0);
      expect(Number(resource('ReleaseQueue').Properties.VisibilityTimeout)).toBeGreaterThanOrEqual(
        6 * timeout + window,
      );
    });
  });

  function releaseMappings(): [string, Resource][] {
    return ofType('AWS::Lambda::EventSourceMapping').filter(
      ([, m]) =>
        JSON.stringify(m.Properties.FunctionName) === JSON.stringify(getAtt('ReleaseLambdaFunction')),
    );
  }

  it('the release event source mapping: the release queue, a maximum concurrency, partial batch responses', () => {
    const mappings = releaseMappings();
    expect(mappings).toHaveLength(1);
    const [[, mapping]] = mappings as [[string, Resource]];
    expect(mapping.Properties.EventSourceArn).toEqual(getAtt('ReleaseQueue'));
    const maximum = (mapping.Properties.ScalingConfig as { MaximumConcurrency?: number } | undefined)
      ?.MaximumConcurrency;
    expect(maximum).toBeGreaterThanOrEqual(2); // the smallest value Lambda accepts
    expect(maximum).toBeLessThanOrEqual(1000);
    expect(mapping.Properties.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
  });

  it('the sweep: reserved concurrency 1, on a schedule', () => {
    expect(resource('SweepLambdaFunction').Properties.ReservedConcurrentExecutions).toBe(1);
    const rules = ofType('AWS::Events::Rule').filter(([, r]) =>
      JSON.stringify(r.Properties.Targets).includes('SweepLambdaFunction'),
    );
    expect(rules).toHaveLength(1);
    expect(rules[0]?.[1].Properties.ScheduleExpression).toBe('rate(1 minute)');
  });

  it('the ledger table: the sparse openLocks and openByUser indexes, TTL on expiresAt, point-in-time recovery, kept on stack removal', () => {
    const table = resource('LedgerTable');
    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.Properties.BillingMode).toBe('PAY_PER_REQUEST');
    expect(table.Properties.KeySchema).toEqual([{ AttributeName: 'lockId', KeyType: 'HASH' }]);
    expect(table.Properties.GlobalSecondaryIndexes).toEqual([
      {
        IndexName: 'openLocks',
        KeySchema: [
          { AttributeName: 'sweepShard', KeyType: 'HASH' },
          { AttributeName: 'lockId', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
      {
        IndexName: 'openByUser',
        KeySchema: [
          { AttributeName: 'openUserId', KeyType: 'HASH' },
          { AttributeName: 'lockId', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['moduleCode'] },
      },
    ]);
    expect(table.Properties.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    expect(table.Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    const tableName = table.Properties.TableName;
    for (const fn of ['ReleaseLambdaFunction', 'SweepLambdaFunction']) {
      expect((resource(fn).Properties.Environment as { Variables: Json }).Variables.LOCK_LEDGER_TABLE).toBe(
        tableName,
      );
    }
  });

  it('no function environment carries a credential', () => {
    for (const [name, fn] of ofType('AWS::Lambda::Function')) {
      const variables = (fn.Properties.Environment as { Variables: Json } | undefined)?.Variables ?? {};
      for (const key of Object.keys(variables)) {
        expect(key, name).not.toMatch(/SECRET(?!_ID)|TOKEN|PASSWORD|APP_?KEY|NODE_TLS_REJECT_UNAUTHORIZED/i);
      }
    }
  });

  it('alarms on the dead-letter queue, rejected credentials, release errors and a sweep not running, to SNS', () => {
    const alarms = Object.fromEntries(
      ofType('AWS::CloudWatch::Alarm').map(([name, alarm]) => [name, alarm.Properties]),
    );
    expect(Object.keys(alarms).sort()).toEqual([
      'CredentialsRejectedAlarm',
      'DeadLetterQueueNotEmptyAlarm',
      'ReleaseErrorsAlarm',
      'SweepNotRunningAlarm',
      'TimeToFreeAlarm',
    ]);
    expect(alarms.DeadLetterQueueNotEmptyAlarm).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: getAtt('ReleaseDeadLetterQueue', 'QueueName') }],
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    // The dimensions the Metrics middleware writes for a failure by kind (test/telemetry checks that side).
    expect(alarms.CredentialsRejectedAlarm).toMatchObject({
      Namespace: 'KooDriveLockReleaser',
      MetricName: 'LocksFailed',
      Dimensions: [
        { Name: 'service', Value: SERVICE },
        { Name: 'errorKind', Value: 'auth' },
      ],
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    expect(alarms.ReleaseErrorsAlarm).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: 'ReleaseLambdaFunction' } }],
    });
    expect(alarms.SweepNotRunningAlarm).toMatchObject({
      Namespace: 'KooDriveLockReleaser',
      MetricName: 'SweepDurationMs',
      Statistic: 'SampleCount',
      EvaluationPeriods: 3,
      ComparisonOperator: 'LessThanThreshold',
      TreatMissingData: 'breaching',
    });
    const [[topic]] = ofType('AWS::SNS::Topic') as [[string, Resource]];
    for (const alarm of Object.values(alarms)) expect(alarm.AlarmActions).toEqual([{ Ref: topic }]);
  });
});

describe('the promise (docs/protocol.md), from the packaged template and the holder defaults', () => {
  const env = (fn: string): Json => (resource(fn).Properties.Environment as { Variables: Json }).Variables;
  const periodSeconds = (): number => {
    const rule = ofType('AWS::Events::Rule').find(([, r]) =>
      JSON.stringify(r.Properties.Targets).includes('SweepLambdaFunction'),
    );
    const match = /^rate\((\d+) (minute|minutes|hour|hours)\)$/.exec(
      String(rule?.[1].Properties.ScheduleExpression),
    );
    if (!match) throw new Error('the sweep schedule is not a rate() expression');
    return Number(match[1]) * (match[2]?.startsWith('hour') ? 3600 : 60);
  };

  it("lease + skew + clock difference + one period + its jitter + the release frees a dead holder's lock within 217 s, well inside KooDrive's 600 s", () => {
    const skew = Number(env('SweepLambdaFunction').CLOCK_SKEW_SECONDS);
    // The holder's own allowance defaults to the same value as the sweep's.
    expect(skew).toBe(DEFAULT_CLOCK_SKEW_SECONDS);
    const bound = timeToFreeBoundSeconds({
      leaseSeconds: holderTiming({}).leaseMs / 1000,
      clockSkewSeconds: skew,
      // Each clock within the allowance of true time: the holder's may run up to twice it ahead of the sweep's.
      clockDifferenceSeconds: 2 * skew,
      schedulePeriodSeconds: periodSeconds(),
      scheduleJitterSeconds: SCHEDULE_JITTER_SECONDS,
      // The DELETE lands within one KooDrive attempt's timeout (KOODRIVE_TIMEOUT_MS, left at its default).
      releaseSeconds: DEFAULT_ENGINE_OPTIONS.attemptTimeoutMs / 1000,
    });
    expect(env('SweepLambdaFunction')).not.toHaveProperty('KOODRIVE_TIMEOUT_MS');
    expect(bound).toBe(217);
    expect(bound).toBeLessThan(KOODRIVE_LOCK_SECONDS);
    const protocol = readFileSync(join(ROOT, 'docs', 'protocol.md'), 'utf8');
    expect(protocol).toContain(`= ${bound} s`);
  });

  it("a sweep run ends before the next one starts (its claims' lease is the time it had)", () => {
    expect(Number(resource('SweepLambdaFunction').Properties.Timeout)).toBeLessThan(periodSeconds());
  });
});

/**
 * The bound from a template's own settings through the one formula (src/core/lease.ts): the holders' default lease,
 * the sweep's skew (and a clock difference of twice it), its schedule with the jitter, one KooDrive attempt.
 */
function boundOf(t: typeof template): number {
  const sweepEnv = (t.Resources.SweepLambdaFunction?.Properties.Environment as { Variables: Json }).Variables;
  const rule = Object.values(t.Resources).find(
    (r) =>
      r.Type === 'AWS::Events::Rule' && JSON.stringify(r.Properties.Targets).includes('SweepLambdaFunction'),
  );
  const match = /^rate\((\d+) (minute|minutes)\)$/.exec(String(rule?.Properties.ScheduleExpression));
  if (!match) throw new Error('the sweep schedule is not a rate(N minutes) expression');
  const skew = Number(sweepEnv.CLOCK_SKEW_SECONDS);
  expect(sweepEnv).not.toHaveProperty('KOODRIVE_TIMEOUT_MS');
  return timeToFreeBoundSeconds({
    leaseSeconds: holderTiming({}).leaseMs / 1000,
    clockSkewSeconds: skew,
    clockDifferenceSeconds: 2 * skew,
    schedulePeriodSeconds: Number(match[1]) * 60,
    scheduleJitterSeconds: SCHEDULE_JITTER_SECONDS,
    releaseSeconds: DEFAULT_ENGINE_OPTIONS.attemptTimeoutMs / 1000,
  });
}

interface Widget {
  type: string;
  properties: {
    title: string;
    region: string;
    metrics: (string | Json)[][];
    annotations?: { horizontal?: { value: number; label: string }[] };
  };
}

function dashboardOf(t: typeof template): { widgets: Widget[]; substitutions: string[] } {
  const body = (t.Resources.Dashboard?.Properties.DashboardBody as { 'Fn::Sub': string })['Fn::Sub'];
  expect(typeof body).toBe('string');
  const substitutions = [...body.matchAll(/\$\{([^}]+)\}/g)].map((m) => m[1] as string);
  return { widgets: (JSON.parse(body) as { widgets: Widget[] }).widgets, substitutions };
}

/** The widget that plots `metric` (with these dimension pairs, when given). */
function widgetFor(widgets: Widget[], namespace: string, metric: string, dimensions: string[] = []): Widget {
  const found = widgets.filter((w) =>
    w.properties.metrics.some((row) => {
      const plain = row.filter((x): x is string => typeof x === 'string');
      if (plain[0] !== namespace || plain[1] !== metric) return false;
      const pairs = plain.slice(2);
      return dimensions.every((d, i) =>
        i % 2 === 0 ? pairs.includes(d) : pairs[pairs.indexOf(dimensions[i - 1] as string) + 1] === d,
      );
    }),
  );
  expect(found, `${namespace} ${metric} ${dimensions.join(' ')}`).toHaveLength(1);
  return found[0] as Widget;
}

describe('the promise, watched: the time-to-free alarm and the dashboard', () => {
  it('the alarm fires when the maximum TimeToFreeSeconds over 15 minutes passes the bound the template’s settings give', () => {
    const alarm = resource('TimeToFreeAlarm').Properties;
    expect(alarm).toMatchObject({
      Namespace: 'KooDriveLockReleaser',
      MetricName: 'TimeToFreeSeconds',
      // The dimensions the Metrics middleware writes (test/telemetry/time-to-free.test.ts checks that side).
      Dimensions: [{ Name: 'service', Value: SERVICE }],
      Statistic: 'Maximum',
      Period: 900,
      EvaluationPeriods: 1,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: 'AlarmTopic' }],
    });
    expect(alarm.Threshold).toBe(boundOf(template));
    expect(alarm.Threshold).toBe(217);
    expect(alarm.AlarmDescription).toContain('= 217 s');
  });

  it('the dashboard plots released, failed by kind, refused-held, time to free with the bound, open locks, sweep duration and the DLQ depth', () => {
    const { widgets, substitutions } = dashboardOf(template);
    const own = (metric: string, dims: string[] = []) =>
      widgetFor(widgets, 'KooDriveLockReleaser', metric, ['service', SERVICE, ...dims]);
    own('LocksReleased');
    for (const kind of ['invalid-input', 'auth', 'retryable', 'permanent', 'deadline']) {
      own('LocksFailed', ['errorKind', kind]);
    }
    own('LocksRefusedHeld');
    own('OpenLocks');
    own('SweepDurationMs');
    const timeToFree = own('TimeToFreeSeconds');
    expect(timeToFree.properties.annotations?.horizontal?.map((a) => a.value)).toEqual([
      resource('TimeToFreeAlarm').Properties.Threshold,
    ]);
    widgetFor(widgets, 'AWS/SQS', 'ApproximateNumberOfMessagesVisible', [
      'QueueName',
      '${ReleaseDeadLetterQueue.QueueName}',
    ]);
    // Fn::Sub fills in only the region and resources of this template.
    for (const name of substitutions) {
      if (name === 'AWS::Region') continue;
      expect(Object.keys(template.Resources)).toContain(name.split('.')[0]);
    }
    for (const w of widgets) expect(w.properties.region).toBe('${AWS::Region}');
  });

  describe('with other settings (--param clockSkewSeconds=20, a sweep every 2 minutes)', () => {
    let other: typeof template;
    beforeAll(() => {
      const packaged = packageService([
        '--param',
        'clockSkewSeconds=20',
        '--param',
        'sweepSchedule=rate(2 minutes)',
        '--param',
        'sweepPeriodSeconds=120',
      ]);
      if (!packaged.template) throw new Error(packaged.output);
      other = packaged.template;
    }, 120_000);

    it('the threshold and the drawn bound follow: 120 + 20 + 40 + 120 + 2 + 5 = 307 s', () => {
      expect(boundOf(other)).toBe(307);
      expect(other.Resources.TimeToFreeAlarm?.Properties.Threshold).toBe(307);
      const { widgets } = dashboardOf(other);
      const timeToFree = widgetFor(widgets, 'KooDriveLockReleaser', 'TimeToFreeSeconds');
      expect(timeToFree.properties.annotations?.horizontal?.map((a) => a.value)).toEqual([307]);
      expect(other.Resources.SweepNotRunningAlarm?.Properties.Period).toBe(120);
    });

    it('a schedule whose period disagrees with sweepPeriodSeconds is refused when packaging', () => {
      const packaged = packageService(['--param', 'sweepSchedule=rate(5 minutes)']);
      expect(packaged.template).toBeUndefined();
      expect(packaged.output).toMatch(
        /sweepPeriodSeconds \(60\) must be the period of sweepSchedule "rate\(5 minutes\)" \(300\)/,
      );
    }, 120_000);
  });
});

it('every alarm description names a heading that exists in docs/operations.md', () => {
  const operations = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');
  const headings = new Set([...operations.matchAll(/^#{2,4} (.+)$/gm)].map((m) => m[1]));
  const alarms = ofType('AWS::CloudWatch::Alarm');
  expect(alarms.length).toBeGreaterThan(0);
  for (const [name, alarm] of alarms) {
    const named = /docs\/operations\.md, "([^"]+)"/.exec(String(alarm.Properties.AlarmDescription))?.[1];
    expect(named, name).toBeDefined();
    expect([...headings], name).toContain(named);
  }
});
