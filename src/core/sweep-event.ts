/**
 * The sweep's event: a scheduled event or EventBridge Scheduler's default notification (an EventBridge envelope,
 * whose own fields are not payload keys; its `detail` is the payload), `{}`, nothing, or a direct invoke. A payload
 * holds only `dryRun`, `staleAfterSeconds` and `limit`: any other key is refused, naming it and the closest known
 * one, and so is a bad value. A refused event gets the structured answer of refusedSweepReport, never a throw.
 */
import * as z from 'zod/mini';
import { ReleaserError } from './errors';
import { describeType } from './model';
import { refusalError, unknownKey, type Refusal } from './requests';
import type { SweepReport } from './sweep';

export const MIN_STALE_AFTER_SECONDS = 60;
export const MAX_STALE_AFTER_SECONDS = 7 * 24 * 3600;
export const MAX_SWEEP_LIMIT = 10_000;
/** A suggested default for `limit` when the event names none. */
export const DEFAULT_SWEEP_LIMIT = 1000;

/** What a sweep run was asked for. */
export interface SweepEvent {
  dryRun: boolean;
  staleAfterSeconds: number;
  limit: number;
}

/** The keys a sweep payload may hold. */
export const SWEEP_KEYS = ['dryRun', 'staleAfterSeconds', 'limit'] as const;
/** An EventBridge envelope's own fields (a scheduled rule's event, Scheduler's default notification). */
const ENVELOPE_KEYS = [
  'version',
  'id',
  'detail-type',
  'source',
  'account',
  'time',
  'region',
  'resources',
  'detail',
  'replay-name',
] as const;

/** The sweep event is unusable: an unknown key, or a field it reads has the wrong type or range. */
export class SweepEventError extends ReleaserError {
  readonly problems: string[];
  /** The field each problem is about, in the same order ("event" for the event as a whole). */
  readonly fields: string[];

  constructor(problems: Refusal[]) {
    super(`invalid sweep event: ${problems.map((p) => p.message).join('; ')}`);
    this.problems = problems.map((p) => p.message);
    this.fields = problems.map((p) => p.field);
  }
}

/**
 * The answer to a refused sweep event, in the release report's shape: the error naming the field, no candidates,
 * no results, nothing counted (nothing was read or attempted).
 */
export function refusedSweepReport(error: SweepEventError, durationMs: number): SweepReport {
  return {
    summary: {
      requested: 0,
      released: 0,
      alreadyReleased: 0,
      failed: 0,
      duplicates: 0,
      skipped: 0,
      closedExpired: 0,
      durationMs,
    },
    results: [],
    candidates: [],
    error: refusalError({ field: error.fields[0] ?? 'event', message: error.problems.join('; ') }),
  };
}

/** An EventBridge envelope: `source` and `detail-type` are strings. */
function isEnvelope(event: Record<string, unknown>): boolean {
  return typeof event.source === 'string' && typeof event['detail-type'] === 'string';
}

/**
 * The payload of an event: an envelope's detail (an object, or JSON text of one, as Scheduler's default notification
 * carries it), else the event itself; `{}` for no event. Unknown keys of the envelope or of the payload are refused.
 */
function payloadOf(event: unknown): unknown {
  if (event === undefined || event === null) return {};
  if (typeof event !== 'object' || Array.isArray(event)) return event;
  const fields = event as Record<string, unknown>;
  if (!isEnvelope(fields)) {
    const unknown = unknownKey(fields, SWEEP_KEYS);
    if (unknown) throw new SweepEventError([unknown]);
    return event;
  }
  const unknownInEnvelope = unknownKey(fields, ENVELOPE_KEYS);
  if (unknownInEnvelope) throw new SweepEventError([unknownInEnvelope]);
  let detail: unknown = fields.detail ?? {};
  if (typeof detail === 'string') {
    try {
      detail = JSON.parse(detail) as unknown;
    } catch {
      throw new SweepEventError([
        { field: 'detail', message: 'detail must be a JSON object, got text that is not JSON' },
      ]);
    }
  }
  if (typeof detail !== 'object' || detail === null || Array.isArray(detail)) {
    throw new SweepEventError([
      { field: 'detail', message: `detail must be a JSON object, got ${describeType(detail)}` },
    ]);
  }
  const unknown = unknownKey(detail as Record<string, unknown>, SWEEP_KEYS, 'detail.');
  if (unknown) throw new SweepEventError([unknown]);
  return detail;
}

/** A whole number in [min, max]; every issue about it says so, with a bounded preview of what came. */
function wholeNumber(name: string, min: number, max: number) {
  const error = (issue: { input?: unknown }) =>
    `${name} must be a whole number from ${min} to ${max}, got ${shown(issue.input)}`;
  // The schema's error covers the issues of its checks too: one message for the field, whatever rule failed.
  return z.optional(z.number({ error }).check(z.int(), z.minimum(min), z.maximum(max)));
}

/** Built per call: one sweep reads one event. */
function eventSchema() {
  return z.object(
    {
      // null is taken for "not given", as it always was.
      dryRun: z.nullish(
        z.boolean({ error: (issue) => `dryRun must be true or false, got ${shown(issue.input)}` }),
      ),
      staleAfterSeconds: wholeNumber('staleAfterSeconds', MIN_STALE_AFTER_SECONDS, MAX_STALE_AFTER_SECONDS),
      limit: wholeNumber('limit', 1, MAX_SWEEP_LIMIT),
    },
    { error: (issue) => `the event must be a JSON object, got ${describeType(issue.input)}` },
  );
}

/**
 * Reads `dryRun`, `staleAfterSeconds` and `limit` from a direct invoke, or from an EventBridge envelope's detail
 * (a scheduled event: `{}`); absent ones take the defaults; no event at all is `{}`. Throws SweepEventError for
 * an unknown key (naming the closest known one), or listing every bad value (one per field), each with a bounded
 * preview of the value, never all of it.
 */
export function parseSweepEvent(
  event: unknown,
  defaults: { staleAfterSeconds: number; limit: number },
): SweepEvent {
  const parsed = z.safeParse(eventSchema(), payloadOf(event));
  if (!parsed.success) {
    // A value may break several rules (0.5 is neither whole nor in range); each field has one message.
    const problems = new Map<string, Refusal>();
    for (const issue of parsed.error.issues) {
      const field = issue.path.length > 0 ? String(issue.path[0]) : 'event';
      if (!problems.has(issue.message)) problems.set(issue.message, { field, message: issue.message });
    }
    throw new SweepEventError([...problems.values()]);
  }
  const { dryRun, staleAfterSeconds, limit } = parsed.data;
  return {
    dryRun: dryRun ?? false,
    staleAfterSeconds: staleAfterSeconds ?? defaults.staleAfterSeconds,
    limit: limit ?? defaults.limit,
  };
}

const SHOWN_LENGTH = 40;

/**
 * A bad field's value for an error message: short strings and scalars as JSON, a long string cut with its
 * length, anything else by its type. Never the whole value (a 1 MB string would make a 1 MB message) and never
 * JSON.stringify of a structure (a deeply nested array overflows the stack).
 */
function shown(value: unknown): string {
  if (typeof value === 'string') {
    return value.length > SHOWN_LENGTH
      ? `${JSON.stringify(value.slice(0, SHOWN_LENGTH))}… (${value.length} characters)`
      : JSON.stringify(value);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return describeType(value);
}
