/**
 * The sweep's event: any JSON object (a scheduled event, an EventBridge Scheduler payload, `{}`, a direct invoke)
 * of which only `dryRun`, `staleAfterSeconds` and `limit` are read; other fields are ignored.
 */
import * as z from 'zod/mini';
import { ReleaserError } from './errors';
import { describeType } from './model';

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

/** The sweep event is unusable: a field it reads has the wrong type or range. */
export class SweepEventError extends ReleaserError {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`invalid sweep event: ${problems.join('; ')}`);
    this.problems = problems;
  }
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
 * Reads `dryRun`, `staleAfterSeconds` and `limit` from any JSON object (a scheduled event, `{}`, a direct
 * invoke); other fields are ignored, absent ones take the defaults; no event at all is `{}`. Throws
 * SweepEventError listing every problem (one per field), each with a bounded preview of the value, never all of it.
 */
export function parseSweepEvent(
  event: unknown,
  defaults: { staleAfterSeconds: number; limit: number },
): SweepEvent {
  const parsed = z.safeParse(eventSchema(), event ?? {});
  if (!parsed.success) {
    // A value may break several rules (0.5 is neither whole nor in range); each field has one message.
    throw new SweepEventError([...new Set(parsed.error.issues.map((issue) => issue.message))]);
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
