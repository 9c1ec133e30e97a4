import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SWEEP_LIMIT,
  MAX_STALE_AFTER_SECONDS,
  MAX_SWEEP_LIMIT,
  MIN_STALE_AFTER_SECONDS,
  parseSweepEvent,
  refusedSweepReport,
  SweepEventError,
} from '../../src/core/sweep-event';
import { ReleaserError } from '../../src/core/errors';

const defaults = { staleAfterSeconds: 900, limit: 500 };

/** The problems parseSweepEvent names for `event`; fails the test when it accepts it. */
function problems(event: unknown): string[] {
  try {
    parseSweepEvent(event, defaults);
  } catch (error) {
    expect(error).toBeInstanceOf(SweepEventError);
    return (error as SweepEventError).problems;
  }
  throw new Error('expected a SweepEventError');
}

describe('the sweep event limits', () => {
  it('are the documented ones', () => {
    expect([MIN_STALE_AFTER_SECONDS, MAX_STALE_AFTER_SECONDS]).toEqual([60, 604_800]);
    expect([MAX_SWEEP_LIMIT, DEFAULT_SWEEP_LIMIT]).toEqual([10_000, 1000]);
  });
});

describe('parseSweepEvent', () => {
  const scheduled = {
    version: '0',
    id: '89d1a02d-5ec7-412e-82f5-13505f849b41',
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time: '2025-01-01T00:00:00Z',
    region: 'eu-west-1',
    resources: ['arn:aws:events:eu-west-1:123456789012:rule/sweep'],
    detail: {},
  };
  /** EventBridge Scheduler's default notification (a target without Input): detail is JSON text. */
  const schedulerDefault = {
    ...scheduled,
    source: 'aws.scheduler',
    resources: ['arn:aws:scheduler:eu-west-1:123456789012:schedule/default/sweep'],
    detail: '{}',
  };

  it('takes the defaults from a scheduled event, a Scheduler notification, {}, or nothing at all', () => {
    const expected = { dryRun: false, staleAfterSeconds: 900, limit: 500 };
    for (const event of [
      scheduled,
      schedulerDefault,
      { ...scheduled, detail: undefined },
      {},
      undefined,
      null,
    ]) {
      expect(parseSweepEvent(event, defaults)).toEqual(expected);
    }
    // The defaults come from the caller, not from constants.
    expect(parseSweepEvent({}, { staleAfterSeconds: 61, limit: 7 })).toEqual({
      dryRun: false,
      staleAfterSeconds: 61,
      limit: 7,
    });
  });

  it("reads dryRun, staleAfterSeconds and limit of a direct invoke, and of an envelope's detail", () => {
    expect(parseSweepEvent({ dryRun: true, staleAfterSeconds: 1200, limit: 50 }, defaults)).toEqual({
      dryRun: true,
      staleAfterSeconds: 1200,
      limit: 50,
    });
    expect(parseSweepEvent({ dryRun: false }, defaults).dryRun).toBe(false);
    // null dryRun has always meant "not given".
    expect(parseSweepEvent({ dryRun: null }, defaults).dryRun).toBe(false);
    expect(parseSweepEvent({ ...scheduled, detail: { limit: 5 } }, defaults).limit).toBe(5);
    expect(parseSweepEvent({ ...schedulerDefault, detail: '{"dryRun":true}' }, defaults).dryRun).toBe(true);
  });

  it("refuses an unknown key, naming it and the closest known one; an envelope's own fields are not payload keys", () => {
    expect(problems({ dryrun: true })).toEqual(['`dryrun`: unknown key, did you mean `dryRun`?']);
    expect(problems({ dryRun: true, staleAfter: 900 })).toEqual([
      '`staleAfter`: unknown key, did you mean `staleAfterSeconds`?',
    ]);
    expect(problems({ scheduler: 'payload' })).toEqual([
      '`scheduler`: unknown key, the known keys are `dryRun`, `staleAfterSeconds`, `limit`',
    ]);
    // A direct invoke is not an envelope, whatever fields of one it carries.
    expect(problems({ dryRun: true, region: 'eu-west-1' })[0]).toMatch(/^`region`: unknown key/);
    expect(problems({ ...scheduled, dryRun: true })).toEqual([
      '`dryRun`: unknown key, the known keys are `version`, `id`, `detail-type`, `source`, `account`, `time`, `region`, `resources`, `detail`, `replay-name`',
    ]);
    expect(problems({ ...scheduled, detail: { dryrun: true } })).toEqual([
      '`detail.dryrun`: unknown key, did you mean `dryRun`?',
    ]);
    expect(problems({ ...schedulerDefault, detail: '{' })).toEqual([
      'detail must be a JSON object, got text that is not JSON',
    ]);
    expect(problems({ ...scheduled, detail: [] })).toEqual(['detail must be a JSON object, got an array']);
  });

  it('names the field of each problem', () => {
    const fields = (event: unknown): string[] => {
      try {
        parseSweepEvent(event, defaults);
      } catch (error) {
        return (error as SweepEventError).fields;
      }
      throw new Error('expected a SweepEventError');
    };
    expect(fields({ dryrun: true })).toEqual(['dryrun']);
    expect(fields({ limit: -1, dryRun: 'x' })).toEqual(['dryRun', 'limit']);
    expect(fields([])).toEqual(['event']);
    expect(fields({ ...scheduled, detail: { limt: 1 } })).toEqual(['detail.limt']);
  });

  it("a refused event answers in the report's shape: the error with its field, nothing counted", () => {
    let error: unknown;
    try {
      parseSweepEvent({ limit: -1 }, defaults);
    } catch (e) {
      error = e;
    }
    expect(refusedSweepReport(error as SweepEventError, 3)).toEqual({
      summary: {
        requested: 0,
        released: 0,
        alreadyReleased: 0,
        failed: 0,
        duplicates: 0,
        skipped: 0,
        closedExpired: 0,
        durationMs: 3,
      },
      results: [],
      candidates: [],
      error: {
        kind: 'invalid-input',
        field: 'limit',
        message: 'limit must be a whole number from 1 to 10000, got -1',
      },
    });
  });

  it.each([
    ['staleAfterSeconds', MIN_STALE_AFTER_SECONDS, MAX_STALE_AFTER_SECONDS],
    ['limit', 1, MAX_SWEEP_LIMIT],
  ] as const)('accepts %s at both ends of its range and refuses one past each', (name, min, max) => {
    expect(parseSweepEvent({ [name]: min }, defaults)[name]).toBe(min);
    expect(parseSweepEvent({ [name]: max }, defaults)[name]).toBe(max);
    const rule = `${name} must be a whole number from ${min} to ${max}`;
    expect(problems({ [name]: min - 1 })).toEqual([`${rule}, got ${min - 1}`]);
    expect(problems({ [name]: max + 1 })).toEqual([`${rule}, got ${max + 1}`]);
    expect(problems({ [name]: min + 0.5 })).toEqual([`${rule}, got ${min + 0.5}`]);
    expect(problems({ [name]: null })).toEqual([`${rule}, got null`]);
    expect(problems({ [name]: [min] })).toEqual([`${rule}, got an array`]);
    expect(problems({ [name]: Infinity })).toEqual([`${rule}, got Infinity`]);
  });

  it('names every problem at once, one per field, with the value it got', () => {
    expect(problems({ dryRun: 'true', staleAfterSeconds: '900', limit: 0.5 })).toEqual([
      'dryRun must be true or false, got "true"',
      'staleAfterSeconds must be a whole number from 60 to 604800, got "900"',
      'limit must be a whole number from 1 to 10000, got 0.5',
    ]);
    expect(problems({ dryRun: 1 })).toEqual(['dryRun must be true or false, got 1']);
    expect(problems({ limit: true, staleAfterSeconds: false })).toEqual([
      'staleAfterSeconds must be a whole number from 60 to 604800, got false',
      'limit must be a whole number from 1 to 10000, got true',
    ]);
    expect(problems({ limit: 0 })).toEqual(['limit must be a whole number from 1 to 10000, got 0']);
    expect(problems({ dryRun: {} })).toEqual(['dryRun must be true or false, got an object']);
  });

  it('refuses an event that is not a JSON object, naming its type', () => {
    expect(problems([])).toEqual(['the event must be a JSON object, got an array']);
    expect(problems('{"dryRun":true}')).toEqual(['the event must be a JSON object, got string']);
    expect(problems(42)).toEqual(['the event must be a JSON object, got number']);
    expect(problems(true)).toEqual(['the event must be a JSON object, got boolean']);
  });

  it('never echoes a value whole: a long string is cut at 40 characters with its length', () => {
    const long = `${'L'.repeat(40)}${'M'.repeat(1_000_000)}`;
    expect(problems({ limit: long })).toEqual([
      `limit must be a whole number from 1 to 10000, got "${'L'.repeat(40)}"… (1000040 characters)`,
    ]);
    // 40 characters exactly are shown whole.
    expect(problems({ dryRun: 'x'.repeat(40) })).toEqual([
      `dryRun must be true or false, got "${'x'.repeat(40)}"`,
    ]);
    // Control characters are escaped, never written raw into a log line.
    expect(problems({ dryRun: 'a\r\nb' })).toEqual(['dryRun must be true or false, got "a\\r\\nb"']);
  });

  it('describes a deeply nested value by its type, without walking it', () => {
    let deep: unknown = [];
    for (let i = 0; i < 10_000; i++) deep = [deep];
    expect(problems({ limit: deep })).toEqual(['limit must be a whole number from 1 to 10000, got an array']);
  });

  it('throws a SweepEventError, a ReleaserError whose message lists the problems', () => {
    let error: unknown;
    try {
      parseSweepEvent({ dryRun: 'no', limit: 0 }, defaults);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ReleaserError);
    expect((error as Error).name).toBe('SweepEventError');
    expect((error as Error).message).toBe(
      'invalid sweep event: dryRun must be true or false, got "no"; limit must be a whole number from 1 to 10000, got 0',
    );
  });
});
