/**
 * The promise, watched in production: the time-to-free bound the alarm compares TimeToFreeSeconds with, and the
 * CloudWatch dashboard. serverless.yml reads them as variables (`${file(./resources/observability.cjs):…}`) when
 * it is resolved (`sls package`, `sls deploy`), so both follow the stack's own settings (the holders' lease,
 * `clockSkewSeconds`, the sweep's schedule, the KooDrive timeout) through src/core/lease.ts's one formula for the
 * bound. Never bundled into the functions.
 */
import { DEFAULT_ENGINE_OPTIONS } from '../src/core/engine';
import {
  DEFAULT_LEASE_SECONDS,
  SCHEDULE_JITTER_SECONDS,
  timeToFreeBoundSeconds as boundOf,
  type TimeToFreeInputs,
} from '../src/core/lease';
import { METRICS_NAMESPACE, SERVICE_NAME } from '../src/telemetry';

/** What osls passes to a variable function; only resolveVariable is used. */
export interface ResolverContext {
  resolveVariable(address: string): Promise<unknown>;
}

/** Seconds between runs of an EventBridge `rate(…)` expression; a cron() schedule has no single period. */
export function ratePeriodSeconds(schedule: string): number {
  const match = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(schedule.trim());
  if (!match) {
    throw new Error(
      `sweepSchedule must be a rate() expression for the time-to-free bound and the sweep alarm, got "${schedule}"`,
    );
  }
  const unit = match[2] as string;
  return Number(match[1]) * (unit.startsWith('minute') ? 60 : unit.startsWith('hour') ? 3600 : 86_400);
}

async function numberParam(context: ResolverContext, name: string): Promise<number | undefined> {
  const raw = await context.resolveVariable(`param:${name}`);
  if (raw === '' || raw === null || raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0)
    throw new Error(`param ${name} must be a number ≥ 0, got ${JSON.stringify(raw)}`);
  return value;
}

/**
 * The bound's inputs from the stack's parameters (holderLeaseSeconds empty: the holders' default lease), for
 * src/core/lease.ts's timeToFreeBoundSeconds: each clock within clockSkewSeconds of true time (a difference of
 * twice that), the schedule's jitter, and one KooDrive attempt's timeout for the release (KOODRIVE_TIMEOUT_MS,
 * which serverless.yml leaves at its default).
 */
export async function boundParts(context: ResolverContext): Promise<TimeToFreeInputs> {
  const schedule = String(await context.resolveVariable('param:sweepSchedule'));
  const periodSeconds = ratePeriodSeconds(schedule);
  const declared = await numberParam(context, 'sweepPeriodSeconds');
  if (declared !== periodSeconds) {
    throw new Error(
      `param sweepPeriodSeconds (${declared}) must be the period of sweepSchedule "${schedule}" (${periodSeconds})`,
    );
  }
  const clockSkewSeconds = (await numberParam(context, 'clockSkewSeconds')) ?? 0;
  return {
    leaseSeconds: (await numberParam(context, 'holderLeaseSeconds')) ?? DEFAULT_LEASE_SECONDS,
    clockSkewSeconds,
    clockDifferenceSeconds: 2 * clockSkewSeconds,
    schedulePeriodSeconds: periodSeconds,
    scheduleJitterSeconds: SCHEDULE_JITTER_SECONDS,
    releaseSeconds: DEFAULT_ENGINE_OPTIONS.attemptTimeoutMs / 1000,
  };
}

export function describeBound(parts: TimeToFreeInputs): string {
  return (
    `lease ${parts.leaseSeconds} + skew ${parts.clockSkewSeconds} + clock difference ${parts.clockDifferenceSeconds} + ` +
    `period ${parts.schedulePeriodSeconds} + jitter ${parts.scheduleJitterSeconds} + release ${parts.releaseSeconds} = ${boundOf(parts)} s`
  );
}

/** The alarm's threshold: `${file(./resources/observability.cjs):timeToFreeBoundSeconds}`. */
export async function timeToFreeBoundSeconds(context: ResolverContext): Promise<number> {
  return boundOf(await boundParts(context));
}

/** The sweep's period (checked against its schedule), for the "sweep not running" alarm. */
export async function sweepPeriodSeconds(context: ResolverContext): Promise<number> {
  return (await boundParts(context)).schedulePeriodSeconds;
}

/** How the bound was computed, for the alarm's description and the dashboard. */
export async function timeToFreeBoundText(context: ResolverContext): Promise<string> {
  return describeBound(await boundParts(context));
}

type MetricRow = (string | Record<string, unknown>)[];

/** The dashboard widgets' titles, in order (the template test checks each one is there). */
export const DASHBOARD_WIDGETS = {
  released: 'Locks released',
  failed: 'Locks failed, by error kind',
  refusedHeld: 'Live locks refused (held)',
  timeToFree: 'Time to free after the last heartbeat (s)',
  openLocks: 'Open locks (read by the sweep)',
  sweepDuration: 'Sweep duration (ms)',
  deadLetters: 'Dead-letter queue depth',
} as const;

const ERROR_KINDS = ['invalid-input', 'auth', 'retryable', 'permanent', 'deadline'] as const;

/**
 * The dashboard's body, as CloudFormation's Fn::Sub of its JSON (the region and the dead-letter queue's name are
 * filled in at deploy time): `${file(./resources/observability.cjs):dashboardBody}`.
 */
export async function dashboardBody(context: ResolverContext): Promise<{ 'Fn::Sub': string }> {
  const parts = await boundParts(context);
  const bound = boundOf(parts);
  const own = (name: string, stat: string, extra: string[] = []): MetricRow => [
    METRICS_NAMESPACE,
    name,
    'service',
    SERVICE_NAME,
    ...extra,
    { stat, label: extra.length > 0 ? `${name} ${extra.join(' ')}` : `${name} (${stat})` },
  ];
  const widget = (
    title: string,
    metrics: MetricRow[],
    position: { x: number; y: number },
    options: Record<string, unknown> = {},
  ) => ({
    type: 'metric',
    ...position,
    width: 12,
    height: 6,
    properties: { title, region: '${AWS::Region}', view: 'timeSeries', period: 60, metrics, ...options },
  });
  const body = {
    widgets: [
      widget(
        DASHBOARD_WIDGETS.timeToFree,
        [own('TimeToFreeSeconds', 'Maximum'), own('TimeToFreeSeconds', 'p50')],
        { x: 0, y: 0 },
        {
          period: 300,
          yAxis: { left: { min: 0 } },
          annotations: { horizontal: [{ label: `bound: ${describeBound(parts)}`, value: bound }] },
        },
      ),
      widget(DASHBOARD_WIDGETS.released, [own('LocksReleased', 'Sum'), own('LocksAlreadyReleased', 'Sum')], {
        x: 12,
        y: 0,
      }),
      widget(
        DASHBOARD_WIDGETS.failed,
        ERROR_KINDS.map((kind) => own('LocksFailed', 'Sum', ['errorKind', kind])),
        { x: 0, y: 6 },
      ),
      widget(DASHBOARD_WIDGETS.refusedHeld, [own('LocksRefusedHeld', 'Sum')], { x: 12, y: 6 }),
      widget(DASHBOARD_WIDGETS.openLocks, [own('OpenLocks', 'Maximum')], { x: 0, y: 12 }),
      widget(
        DASHBOARD_WIDGETS.sweepDuration,
        [own('SweepDurationMs', 'Maximum'), own('SweepDurationMs', 'Average')],
        {
          x: 12,
          y: 12,
        },
      ),
      widget(
        DASHBOARD_WIDGETS.deadLetters,
        [
          [
            'AWS/SQS',
            'ApproximateNumberOfMessagesVisible',
            'QueueName',
            '${ReleaseDeadLetterQueue.QueueName}',
            { stat: 'Maximum', label: 'messages in the dead-letter queue' },
          ],
        ],
        { x: 0, y: 18 },
        { period: 300 },
      ),
    ],
  };
  return { 'Fn::Sub': JSON.stringify(body) };
}
