/**
 * The ledger's contract, run against DynamoLedger on dynalite (through each DynamoDB adapter) and against MemoryLedger (src/testing/memory-ledger.ts): the
 * in-memory model the simulation and the core's tests use is trusted because it passes exactly these tests.
 * Results are checked by reading the items back: for DynamoDB through the SDK's document client, independent of
 * the adapter's own codec.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startDynalite, type LocalDynamo } from '../../dev/dynalite';
import { MemoryLedger } from '../../src/testing/memory-ledger';
import type { HolderLedger, LedgerItem, ReleaseLedger, SweepLedger, UserLedger } from '../../src/core/lease';
import type { LockResult, OutcomeRecorder } from '../../src/core/model';
import type { DynamoCalls } from '../../src/ledger/dynamo-calls';
import { httpDynamoCalls } from '../../src/ledger/dynamo-http';
import { sdkDynamoCalls } from '../../src/ledger/dynamo-sdk';
import {
  DynamoLedger,
  LedgerConflictError,
  LockExistsError,
  LockLostError,
  LockNotFoundError,
} from '../../src/ledger/ledger';
import { ledgerItem, manyItems, MINUTE, NOW, rawItem, SECOND, seedItems } from '../helpers/ledger-fakes';

type Ledger = HolderLedger & SweepLedger & UserLedger & ReleaseLedger;

interface Subject {
  ledger: Ledger;
  /** The stored item, read around the ledger under test. */
  stored(lockId: string): Promise<LedgerItem | undefined>;
  /** Writes items as they are. */
  seed(items: LedgerItem[]): Promise<void>;
  close(): Promise<void>;
}

let now = NOW;
const clock = () => now;

/** DynamoLedger on dynalite through one of its DynamoDB adapters. */
const onDynalite =
  (calls: (dynamo: LocalDynamo) => DynamoCalls) =>
  async (pageSize: number): Promise<Subject> => {
    const dynamo: LocalDynamo = await startDynalite();
    const ledger = new DynamoLedger({
      tableName: dynamo.tableName,
      calls: calls(dynamo),
      now: clock,
      pageSize,
    });
    return {
      ledger,
      stored: (lockId) => rawItem(dynamo.client, dynamo.tableName, lockId),
      seed: (items) => seedItems(dynamo.client, dynamo.tableName, items),
      close: () => dynamo.close(),
    };
  };

const subjects: Array<[string, (pageSize: number) => Promise<Subject>]> = [
  [
    'DynamoLedger on dynalite, signed requests over undici (the functions)',
    onDynalite((dynamo) =>
      httpDynamoCalls({
        region: 'us-east-1',
        endpoint: dynamo.endpoint,
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      }),
    ),
  ],
  [
    'DynamoLedger on dynalite, the AWS SDK (the holder package)',
    onDynalite((dynamo) => sdkDynamoCalls(dynamo.client)),
  ],
  [
    'MemoryLedger',
    (pageSize) => {
      const ledger = new MemoryLedger({ now: clock, pageSize });
      return Promise.resolve({
        ledger,
        stored: (lockId) => Promise.resolve(structuredClone(ledger.items.get(lockId))),
        seed: (items) => Promise.resolve(items.forEach((item) => ledger.put(item))),
        close: () => Promise.resolve(),
      });
    },
  ],
];

const SHARD = /^(\d|1[0-5])$/;
const RETAIN = 7 * 24 * 3600;
const released = (lockId: string, attempts = 1): LockResult => ({
  lockId,
  userId: 'user-1',
  outcome: 'released',
  attempts,
});
const failed = (lockId: string, attempts = 4, message = 'unavailable'): LockResult => ({
  lockId,
  userId: 'user-1',
  outcome: 'failed',
  attempts,
  error: { kind: 'retryable', httpStatus: 503, message },
});
const acquired = (lockId: string, holder: string | null = 'w-1', leaseSeconds = 120) => ({
  lockId,
  userId: 'u',
  moduleCode: '101',
  ...(holder !== null ? { holder } : {}),
  leaseSeconds,
});
const caught = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => 'resolved',
    (error: unknown) => error,
  );

async function readAll(ledger: SweepLedger): Promise<LedgerItem[]> {
  const items: LedgerItem[] = [];
  for await (const page of ledger.openItems()) items.push(...page);
  return items;
}

describe.each(subjects)('ledger contract: %s', (_name, create) => {
  let subject: Subject;
  let ledger: Ledger;

  beforeEach(async () => {
    now = NOW;
    subject = await create(7);
    ledger = subject.ledger;
  });
  afterEach(async () => {
    await subject.close();
  });

  describe('acquire', () => {
    it('writes a HELD item at version 1 with the lease and a sweep shard', async () => {
      const item = await ledger.recordAcquired(acquired('a'));
      const expected = {
        lockId: 'a',
        userId: 'u',
        moduleCode: '101',
        holder: 'w-1',
        status: 'HELD',
        acquiredAt: NOW,
        heartbeatAt: NOW,
        leaseSeconds: 120,
        releaseAttempts: 0,
        version: 1,
        sweepShard: expect.stringMatching(SHARD) as string,
        openUserId: 'u',
      };
      expect(await subject.stored('a')).toEqual(expected);
      expect(item).toEqual(await subject.stored('a'));
      expect(await subject.stored('b')).toBeUndefined();
    });

    it('an anonymous holder writes no holder attribute', async () => {
      await ledger.recordAcquired(acquired('a', null));
      expect(await subject.stored('a')).not.toHaveProperty('holder');
    });

    it('refuses a lock ID already in the ledger, open or final, and changes nothing', async () => {
      await ledger.recordAcquired(acquired('a'));
      await subject.seed([ledgerItem({ lockId: 'done', status: 'RELEASED', version: 4 })]);
      now += MINUTE;
      const before = await subject.stored('a');
      const error = await caught(ledger.recordAcquired(acquired('a', 'w-2')));
      expect(error).toBeInstanceOf(LockExistsError);
      expect(error).toMatchObject({ lockId: 'a' });
      expect(await subject.stored('a')).toEqual(before);
      await expect(ledger.recordAcquired(acquired('done'))).rejects.toBeInstanceOf(LockExistsError);
      expect(await subject.stored('done')).toMatchObject({ status: 'RELEASED', version: 4 });
    });
  });

  describe('heartbeat', () => {
    it('moves heartbeatAt forward, rewrites the lease and the version, and nothing else', async () => {
      await ledger.recordAcquired(acquired('a', 'w-1', 120));
      const before = await subject.stored('a');
      now += 40 * SECOND;
      expect(await ledger.recordHeartbeat('a', 'w-1', 30)).toBe(NOW + 40 * SECOND);
      expect(await subject.stored('a')).toEqual({
        ...before,
        heartbeatAt: NOW + 40 * SECOND,
        leaseSeconds: 30,
        version: 2,
      });
    });

    it('works for an anonymous holder on its own item', async () => {
      await ledger.recordAcquired(acquired('a', null));
      now += SECOND;
      expect(await ledger.recordHeartbeat('a', undefined, 60)).toBe(NOW + SECOND);
      expect(await subject.stored('a')).toMatchObject({ heartbeatAt: NOW + SECOND, version: 2 });
    });

    it('a heartbeat older than (or as old as) the stored one neither moves it back nor counts as a loss', async () => {
      await ledger.recordAcquired(acquired('a', 'w-1', 120));
      now = NOW + 2 * MINUTE;
      await ledger.recordHeartbeat('a', 'w-1', 90);
      const after = await subject.stored('a');
      now = NOW + MINUTE; // a delayed write of an earlier heartbeat
      expect(await ledger.recordHeartbeat('a', 'w-1', 60)).toBe(NOW + 2 * MINUTE);
      now = NOW + 2 * MINUTE;
      expect(await ledger.recordHeartbeat('a', 'w-1', 60)).toBe(NOW + 2 * MINUTE);
      expect(await subject.stored('a')).toEqual(after);
      expect(after).toMatchObject({ heartbeatAt: NOW + 2 * MINUTE, leaseSeconds: 90, version: 2 });
    });

    it.each([
      ['another holder', 'w-2', /held by w-1, not w-2/],
      ['an anonymous heartbeat on a named item', undefined, /held by w-1/],
    ])('is conditional on the holder: %s loses, and writes nothing', async (_case, holder, message) => {
      await ledger.recordAcquired(acquired('a', 'w-1'));
      now += MINUTE;
      const error = await caught(ledger.recordHeartbeat('a', holder, 120));
      expect(error).toBeInstanceOf(LockLostError);
      expect(error).toMatchObject({ lockId: 'a', status: 'HELD' });
      expect((error as Error).message).toMatch(message);
      expect(await subject.stored('a')).toMatchObject({ heartbeatAt: NOW, version: 1 });
    });

    it('a named heartbeat on an anonymous item loses', async () => {
      await ledger.recordAcquired(acquired('a', null));
      now += MINUTE;
      await expect(ledger.recordHeartbeat('a', 'w-1', 120)).rejects.toBeInstanceOf(LockLostError);
      expect(await subject.stored('a')).toMatchObject({ heartbeatAt: NOW, version: 1 });
    });

    it.each(['RELEASING', 'RELEASE_FAILED', 'RELEASED', 'EXPIRED'] as const)(
      'on a %s item throws LockLostError naming the status, and writes nothing',
      async (status) => {
        const item = ledgerItem({
          lockId: 'a',
          holder: 'w-1',
          status,
          version: 5,
          heartbeatAt: NOW - SECOND,
        });
        await subject.seed([item]);
        const error = await caught(ledger.recordHeartbeat('a', 'w-1', 120));
        expect(error).toBeInstanceOf(LockLostError);
        expect(error).toMatchObject({
          status,
          message: expect.stringMatching(new RegExp(`status is ${status}.*stop`)) as string,
        });
        expect(await subject.stored('a')).toEqual(item);
      },
    );

    it('on a lock not in the ledger throws LockLostError and creates nothing', async () => {
      const error = await caught(ledger.recordHeartbeat('gone', 'w-1', 120));
      expect(error).toBeInstanceOf(LockLostError);
      expect(error).toMatchObject({
        status: undefined,
        message: expect.stringMatching(/not in the ledger/) as string,
      });
      expect(await subject.stored('gone')).toBeUndefined();
    });
  });

  describe('claim', () => {
    it('RELEASING with heartbeatAt = now and the claim lease, conditional on the version read', async () => {
      const read = ledgerItem({ lockId: 'a', heartbeatAt: NOW - 20 * MINUTE, version: 7 });
      await subject.seed([read]);
      now += SECOND;
      const claimed = await ledger.claim(read, 300);
      const expected = {
        ...read,
        status: 'RELEASING',
        heartbeatAt: NOW + SECOND,
        leaseSeconds: 300,
        version: 8,
      };
      expect(claimed).toEqual(expected);
      expect(await subject.stored('a')).toEqual(expected);
      // The same (now outdated) read loses, and changes nothing.
      now += SECOND;
      expect(await ledger.claim(read, 300)).toBeUndefined();
      expect(await subject.stored('a')).toEqual(expected);
    });

    it('loses to a heartbeat that landed after the read', async () => {
      await ledger.recordAcquired(acquired('a'));
      const [read] = await readAll(ledger);
      now += MINUTE;
      await ledger.recordHeartbeat('a', 'w-1', 120);
      expect(await ledger.claim(read!, 300)).toBeUndefined();
      expect(await subject.stored('a')).toMatchObject({
        status: 'HELD',
        heartbeatAt: NOW + MINUTE,
        version: 2,
      });
    });

    it('of an item that is gone creates nothing', async () => {
      expect(await ledger.claim(ledgerItem({ lockId: 'gone' }), 300)).toBeUndefined();
      expect(await subject.stored('gone')).toBeUndefined();
    });
  });

  describe('claim recorder', () => {
    async function claimed(
      items: LedgerItem[],
    ): Promise<{ recorder: OutcomeRecorder; claims: LedgerItem[] }> {
      await subject.seed(items);
      const claims: LedgerItem[] = [];
      for (const item of items) {
        const claim = await ledger.claim(item, 300);
        expect(claim).toBeDefined();
        claims.push(claim!);
      }
      return { recorder: ledger.claimRecorder(claims), claims };
    }

    it('records a failure while the claim is current, restoring the heartbeat and lease the claim overwrote', async () => {
      const read = ledgerItem({
        lockId: 'a',
        heartbeatAt: NOW - 20 * MINUTE,
        leaseSeconds: 45,
        releaseAttempts: 2,
      });
      const { recorder } = await claimed([read]);
      now += MINUTE;
      await recorder.record(failed('a', 3, 'boom'));
      expect(await subject.stored('a')).toEqual({
        ...read,
        status: 'RELEASE_FAILED',
        releaseAttempts: 5,
        lastError: 'retryable: boom',
        version: 3,
      });
    });

    it('a restored item without a lease stays without one', async () => {
      const read = ledgerItem({ lockId: 'a', heartbeatAt: NOW - 20 * MINUTE, leaseSeconds: undefined });
      const { recorder } = await claimed([read]);
      await recorder.record(failed('a', 1));
      const stored = await subject.stored('a');
      expect(stored).not.toHaveProperty('leaseSeconds');
      expect(stored).toMatchObject({ status: 'RELEASE_FAILED', heartbeatAt: NOW - 20 * MINUTE });
    });

    it('refuses a failure once someone else wrote the item after the claim (LedgerConflictError)', async () => {
      const { recorder } = await claimed([ledgerItem({ lockId: 'b', heartbeatAt: NOW - 20 * MINUTE })]);
      await ledger.record(failed('b', 1, 'release path'));
      const after = await subject.stored('b');
      const error = await caught(recorder.record(failed('b', 2)));
      expect(error).toBeInstanceOf(LedgerConflictError);
      expect(error).toMatchObject({ lockId: 'b' });
      expect(await subject.stored('b')).toEqual(after);
      expect(after).toMatchObject({ status: 'RELEASE_FAILED', releaseAttempts: 1, version: 3 });
    });

    it('records a release whoever wrote since (KooDrive said so), and it leaves the index', async () => {
      const { recorder } = await claimed([ledgerItem({ lockId: 'c', heartbeatAt: NOW - 20 * MINUTE })]);
      await ledger.record(failed('c', 1));
      now += MINUTE;
      await recorder.record(released('c', 2));
      const stored = await subject.stored('c');
      expect(stored).toMatchObject({
        status: 'RELEASED',
        releasedAt: NOW + MINUTE,
        expiresAt: (NOW + MINUTE) / 1000 + RETAIN,
        releaseAttempts: 3,
        version: 4,
      });
      expect(stored).not.toHaveProperty('sweepShard');
    });

    it('refuses a failure of a lock it was not given', async () => {
      const { recorder } = await claimed([ledgerItem({ lockId: 'a', heartbeatAt: NOW - 20 * MINUTE })]);
      await subject.seed([ledgerItem({ lockId: 'other' })]);
      await expect(recorder.record(failed('other'))).rejects.toThrow(/not claimed/);
      expect(await subject.stored('other')).toEqual(ledgerItem({ lockId: 'other' }));
    });
  });

  describe('record (the release path)', () => {
    it('creates a RELEASED item when absent, never indexed', async () => {
      await ledger.record({ ...released('new'), userId: 'u-9', outcome: 'alreadyReleased' });
      expect(await subject.stored('new')).toEqual({
        lockId: 'new',
        userId: 'u-9',
        status: 'RELEASED',
        acquiredAt: NOW,
        heartbeatAt: NOW,
        releasedAt: NOW,
        expiresAt: NOW / 1000 + RETAIN,
        releaseAttempts: 1,
        version: 1,
      });
    });

    it('creates a RELEASE_FAILED item when absent, without sweepShard (the sweep never sees it)', async () => {
      await ledger.record(failed('new', 3, 'x'.repeat(2000)));
      const stored = await subject.stored('new');
      expect(stored).toEqual({
        lockId: 'new',
        userId: 'user-1',
        status: 'RELEASE_FAILED',
        acquiredAt: NOW,
        heartbeatAt: NOW,
        releaseAttempts: 3,
        lastError: expect.stringMatching(/^retryable: x+…$/) as string,
        version: 1,
      });
      expect(stored?.lastError).toHaveLength(500);
      expect(await readAll(ledger)).toEqual([]);
    });

    it('a failure keeps an existing item and its shard, adds the attempts', async () => {
      const item = ledgerItem({ lockId: 'a', releaseAttempts: 4, version: 5, holder: 'w-1' });
      await subject.seed([item]);
      await ledger.record(failed('a', 4, 'down'));
      expect(await subject.stored('a')).toEqual({
        ...item,
        status: 'RELEASE_FAILED',
        releaseAttempts: 8,
        lastError: 'retryable: down',
        version: 6,
      });
    });

    it('a release of an open item makes it RELEASED and takes it out of the index', async () => {
      const item = ledgerItem({ lockId: 'a', status: 'RELEASE_FAILED', releaseAttempts: 2, version: 3 });
      await subject.seed([item]);
      await ledger.record(released('a', 2));
      const { sweepShard: _, ...rest } = item;
      expect(await subject.stored('a')).toEqual({
        ...rest,
        status: 'RELEASED',
        releasedAt: NOW,
        expiresAt: NOW / 1000 + RETAIN,
        releaseAttempts: 4,
        version: 4,
      });
    });

    it.each(['RELEASED', 'EXPIRED'] as const)(
      'a %s item is final: later outcomes leave it as it is',
      async (status) => {
        const item = ledgerItem({
          lockId: 'a',
          status,
          releasedAt: NOW - MINUTE,
          expiresAt: 123,
          version: 9,
        });
        await subject.seed([item]);
        now += MINUTE;
        await ledger.record(failed('a'));
        await ledger.record(released('a'));
        expect(await subject.stored('a')).toEqual(item);
      },
    );

    it('does not record invalid-input failures or dry runs', async () => {
      await ledger.record({ ...failed('a'), error: { kind: 'invalid-input', message: 'bad' } });
      await ledger.record({ ...released('b'), outcome: 'wouldRelease', attempts: 0 });
      expect(await subject.stored('a')).toBeUndefined();
      expect(await subject.stored('b')).toBeUndefined();
    });
  });

  describe('the release path’s live-lease read and the outcome written on what it read', () => {
    it('readItems reads each item as stored, final ones too, and says which are absent: one reading per ID', async () => {
      const item = ledgerItem({ lockId: 'a', holder: 'w-1', version: 4, forcedAt: NOW - MINUTE });
      const final = ledgerItem({
        lockId: 'r',
        status: 'RELEASED',
        releasedAt: NOW,
        expiresAt: 1,
        version: 3,
      });
      await subject.seed([item, final]);
      const readings = await ledger.readItems(['a', 'nothing', 'r', 'a']);
      expect(readings).toEqual(
        new Map([
          ['a', { ok: true, item }],
          ['nothing', { ok: true, item: undefined }],
          ['r', { ok: true, item: final }],
        ]),
      );
    });

    it('readItems sees the latest write (a consistent read), and reads more than 100 IDs, every one once', async () => {
      await ledger.recordAcquired(acquired('a'));
      now += SECOND;
      await ledger.recordHeartbeat('a', 'w-1', 60);
      expect((await ledger.readItems(['a'])).get('a')).toEqual({ ok: true, item: await subject.stored('a') });
      const many = manyItems(230, 'm', (lockId) => ledgerItem({ lockId, version: 2 }));
      await subject.seed(many);
      const ids = [...many.map((i) => i.lockId), 'absent-1', 'absent-2'];
      const readings = await ledger.readItems(ids);
      expect([...readings.keys()].sort()).toEqual([...ids].sort());
      for (const item of many) expect(readings.get(item.lockId)).toEqual({ ok: true, item });
      expect(readings.get('absent-2')).toEqual({ ok: true, item: undefined });
    });

    it('a failure on the version read is written, the item keeps its holder, heartbeat, lease and shard', async () => {
      const item = ledgerItem({ lockId: 'a', holder: 'w-1', heartbeatAt: NOW - 5 * MINUTE, version: 5 });
      await subject.seed([item]);
      await ledger.record(failed('a', 2, 'down'), { read: 5, forced: false });
      expect(await subject.stored('a')).toEqual({
        ...item,
        status: 'RELEASE_FAILED',
        releaseAttempts: 2,
        lastError: 'retryable: down',
        version: 6,
      });
    });

    it('a failure is not written over an item that changed since the read (LedgerConflictError): a holder that heart-beat keeps its HELD item', async () => {
      await subject.seed([ledgerItem({ lockId: 'a', holder: 'w-1', version: 5 })]);
      now += SECOND;
      await ledger.recordHeartbeat('a', 'w-1', 120);
      const before = await subject.stored('a');
      const error = await caught(ledger.record(failed('a'), { read: 5, forced: false }));
      expect(error).toBeInstanceOf(LedgerConflictError);
      expect((error as Error).message).toMatch(
        /changed since the release read it; its failure was not recorded/,
      );
      expect(await subject.stored('a')).toEqual(before);
      expect(before).toMatchObject({ status: 'HELD', version: 6 });
    });

    it('a failure on a final item read at its version leaves it final (LedgerConflictError)', async () => {
      const item = ledgerItem({ lockId: 'a', status: 'RELEASED', releasedAt: NOW, expiresAt: 1, version: 3 });
      await subject.seed([item]);
      expect(await caught(ledger.record(failed('a'), { read: 3, forced: false }))).toBeInstanceOf(
        LedgerConflictError,
      );
      expect(await subject.stored('a')).toEqual(item);
    });

    it('a failure of a lock found without an item creates it (never indexed) only while still absent', async () => {
      await ledger.record(failed('new', 1), { read: 'absent', forced: false });
      expect(await subject.stored('new')).toMatchObject({ status: 'RELEASE_FAILED', version: 1 });
      expect(await readAll(ledger)).toEqual([]);
      // A holder recorded the lock after the read: its HELD item stays.
      await ledger.recordAcquired(acquired('late'));
      const held = await subject.stored('late');
      expect(await caught(ledger.record(failed('late'), { read: 'absent', forced: false }))).toBeInstanceOf(
        LedgerConflictError,
      );
      expect(await subject.stored('late')).toEqual(held);
    });

    it('a release is written whoever wrote since the read (KooDrive said so), and a forced one is marked forcedAt', async () => {
      await subject.seed([ledgerItem({ lockId: 'a', holder: 'w-1', version: 5 })]);
      now += SECOND;
      await ledger.recordHeartbeat('a', 'w-1', 120);
      await ledger.record(released('a'), { read: 5, forced: true });
      expect(await subject.stored('a')).toMatchObject({
        status: 'RELEASED',
        releasedAt: NOW + SECOND,
        forcedAt: NOW + SECOND,
        version: 7,
      });
      expect(await subject.stored('a')).not.toHaveProperty('sweepShard');
      // Not forced: no mark.
      await subject.seed([ledgerItem({ lockId: 'b', version: 2 })]);
      await ledger.record(released('b'), { read: 2, forced: false });
      expect(await subject.stored('b')).not.toHaveProperty('forcedAt');
    });

    it('a forced failure over a live HELD item is RELEASE_FAILED with forcedAt, and the holder’s next heartbeat loses', async () => {
      const item = ledgerItem({ lockId: 'a', holder: 'w-1', heartbeatAt: NOW - SECOND, version: 5 });
      await subject.seed([item]);
      await ledger.record(failed('a', 1), { read: 5, forced: true });
      expect(await subject.stored('a')).toEqual({
        ...item,
        status: 'RELEASE_FAILED',
        releaseAttempts: 1,
        lastError: 'retryable: unavailable',
        forcedAt: NOW,
        version: 6,
      });
      now += SECOND;
      expect(await caught(ledger.recordHeartbeat('a', 'w-1', 120))).toBeInstanceOf(LockLostError);
    });

    it('a forced failure of a lock whose item could not be read is written as without a basis, marked forcedAt', async () => {
      await subject.seed([ledgerItem({ lockId: 'a', version: 5 })]);
      await ledger.record(failed('a', 1), { read: 'unread', forced: true });
      await ledger.record(failed('new', 1), { read: 'unread', forced: true });
      expect(await subject.stored('a')).toMatchObject({
        status: 'RELEASE_FAILED',
        forcedAt: NOW,
        version: 6,
      });
      expect(await subject.stored('new')).toMatchObject({
        status: 'RELEASE_FAILED',
        forcedAt: NOW,
        version: 1,
      });
    });
  });

  describe('recordReleased', () => {
    it('RELEASED, out of the index, kept 7 days; idempotent; LockNotFoundError when absent', async () => {
      await ledger.recordAcquired(acquired('a'));
      const before = await subject.stored('a');
      now += MINUTE;
      await ledger.recordReleased('a');
      const { sweepShard: _, openUserId: __, ...rest } = before!;
      const expected = {
        ...rest,
        status: 'RELEASED',
        releasedAt: NOW + MINUTE,
        expiresAt: (NOW + MINUTE) / 1000 + RETAIN,
        version: 2,
      };
      expect(await subject.stored('a')).toEqual(expected);
      now += MINUTE;
      await ledger.recordReleased('a');
      expect(await subject.stored('a')).toEqual(expected);
      const error = await caught(ledger.recordReleased('nothing'));
      expect(error).toBeInstanceOf(LockNotFoundError);
      expect(await subject.stored('nothing')).toBeUndefined();
    });

    it('leaves an EXPIRED item as it is', async () => {
      const item = ledgerItem({ lockId: 'a', status: 'EXPIRED', expiresAt: 5, version: 3 });
      await subject.seed([item]);
      await ledger.recordReleased('a');
      expect(await subject.stored('a')).toEqual(item);
    });
  });

  describe('closeExpired', () => {
    it('EXPIRED, out of the index, kept 7 days, conditional on the version read', async () => {
      const read = ledgerItem({
        lockId: 'a',
        status: 'RELEASE_FAILED',
        heartbeatAt: NOW - 60 * MINUTE,
        version: 4,
      });
      await subject.seed([read]);
      now += SECOND;
      expect(await ledger.closeExpired(read)).toBe(true);
      const { sweepShard: _, ...rest } = read;
      const expected = {
        ...rest,
        status: 'EXPIRED',
        expiresAt: Math.floor((NOW + SECOND) / 1000) + RETAIN,
        version: 5,
      };
      expect(await subject.stored('a')).toEqual(expected);
      expect(await ledger.closeExpired(read)).toBe(false);
      expect(await subject.stored('a')).toEqual(expected);
    });

    it('loses to a write after the read, and creates nothing for an item that is gone', async () => {
      const read = ledgerItem({ lockId: 'a', status: 'RELEASE_FAILED', version: 4 });
      await subject.seed([read]);
      await ledger.record(failed('a', 1));
      expect(await ledger.closeExpired(read)).toBe(false);
      expect(await subject.stored('a')).toMatchObject({ status: 'RELEASE_FAILED', version: 5 });
      expect(await ledger.closeExpired(ledgerItem({ lockId: 'gone' }))).toBe(false);
      expect(await subject.stored('gone')).toBeUndefined();
    });
  });

  describe('openItems and the sweep shard', () => {
    it('returns exactly the open items, each once, over many pages and every shard', async () => {
      const open = [
        ...manyItems(60, 'held', (lockId) => ledgerItem({ lockId })),
        ...manyItems(25, 'releasing', (lockId) => ledgerItem({ lockId, status: 'RELEASING' })),
        ...manyItems(15, 'failed', (lockId) => ledgerItem({ lockId, status: 'RELEASE_FAILED' })),
      ];
      const closed = [
        ...manyItems(20, 'released', (lockId) => ledgerItem({ lockId, status: 'RELEASED' })),
        ...manyItems(5, 'expired', (lockId) => ledgerItem({ lockId, status: 'EXPIRED' })),
      ];
      await subject.seed([...open, ...closed]);
      await ledger.record(failed('unindexed', 1));
      const found = await readAll(ledger);
      expect(found).toHaveLength(open.length);
      expect(new Set(found.map((i) => i.lockId))).toEqual(new Set(open.map((i) => i.lockId)));
      const byId = new Map(found.map((i) => [i.lockId, i]));
      for (const item of open) expect(byId.get(item.lockId)).toEqual(item);
      expect(new Set(open.map((i) => i.sweepShard)).size).toBeGreaterThan(8);
    });

    it('final items leave: after a release, a recorded release and a close, only the rest is read', async () => {
      await ledger.recordAcquired(acquired('kept'));
      await ledger.recordAcquired(acquired('holder-released'));
      await ledger.recordAcquired(acquired('path-released'));
      await subject.seed([ledgerItem({ lockId: 'expired', status: 'RELEASE_FAILED', version: 2 })]);
      expect((await readAll(ledger)).map((i) => i.lockId).sort()).toEqual([
        'expired',
        'holder-released',
        'kept',
        'path-released',
      ]);
      await ledger.recordReleased('holder-released');
      await ledger.record(released('path-released'));
      expect(
        await ledger.closeExpired(ledgerItem({ lockId: 'expired', status: 'RELEASE_FAILED', version: 2 })),
      ).toBe(true);
      expect((await readAll(ledger)).map((i) => i.lockId)).toEqual(['kept']);
    });

    it('stopping after the first page is fine', async () => {
      await subject.seed(manyItems(40, 'h', (lockId) => ledgerItem({ lockId })));
      let pages = 0;
      for await (const page of ledger.openItems()) {
        expect(page.length).toBeGreaterThan(0);
        pages += 1;
        break;
      }
      expect(pages).toBe(1);
      expect(await readAll(ledger)).toHaveLength(40);
    });

    it('sweepShard is present exactly while the item is open, and never changes', async () => {
      const shardOf = async (lockId: string) => (await subject.stored(lockId))?.sweepShard;
      await ledger.recordAcquired(acquired('a'));
      const shard = await shardOf('a');
      expect(shard).toMatch(SHARD);
      now += MINUTE;
      await ledger.recordHeartbeat('a', 'w-1', 120);
      expect(await shardOf('a')).toBe(shard);
      const [read] = await readAll(ledger);
      const claim = await ledger.claim(read!, 300);
      expect(await shardOf('a')).toBe(shard);
      await ledger.claimRecorder([claim!]).record(failed('a', 1));
      expect(await shardOf('a')).toBe(shard);
      await ledger.record(failed('a', 1));
      expect(await shardOf('a')).toBe(shard);
      await ledger.record(released('a'));
      expect(await shardOf('a')).toBeUndefined();
      await ledger.record(failed('a', 1));
      expect(await shardOf('a')).toBeUndefined();
    });
  });

  describe('openItemsOf (find-by-user)', () => {
    const mine = (lockId: string, overrides: Partial<LedgerItem> = {}) =>
      ledgerItem({ lockId, userId: 'u-7', openUserId: 'u-7', moduleCode: '101', ...overrides });
    const ids = (items: LedgerItem[]) => items.map((i) => i.lockId);

    it("returns exactly the user's open items in the user index, whole, of one module when asked", async () => {
      const items = [
        mine('a-held'),
        mine('b-releasing', { status: 'RELEASING' }),
        mine('c-failed', { status: 'RELEASE_FAILED', moduleCode: '102' }),
        mine('d-no-module', { moduleCode: undefined }),
      ];
      await subject.seed([
        ...items,
        // final items keep their user but left the index
        ledgerItem({ lockId: 'e-released', userId: 'u-7', status: 'RELEASED', moduleCode: '101' }),
        ledgerItem({ lockId: 'f-expired', userId: 'u-7', status: 'EXPIRED', moduleCode: '101' }),
        // an item an older holder wrote, without openUserId: not in the index
        ledgerItem({ lockId: 'g-old-holder', userId: 'u-7', moduleCode: '101' }),
        // other users, one of them a prefix of this one
        ledgerItem({ lockId: 'h-other', userId: 'u-70', openUserId: 'u-70', moduleCode: '101' }),
        ledgerItem({ lockId: 'i-other', userId: 'u', openUserId: 'u', moduleCode: '101' }),
      ]);
      expect(await ledger.openItemsOf('u-7')).toEqual(items);
      expect(ids(await ledger.openItemsOf('u-7', '101'))).toEqual(['a-held', 'b-releasing']);
      expect(ids(await ledger.openItemsOf('u-7', '102'))).toEqual(['c-failed']);
      expect(await ledger.openItemsOf('u-7', '100')).toEqual([]);
      expect(await ledger.openItemsOf('nobody')).toEqual([]);
    });

    it('an acquired item is found; heartbeats, claims and failures keep it there; every final write takes it out', async () => {
      for (const id of ['kept', 'holder-released', 'path-released', 'closed']) {
        await ledger.recordAcquired({ ...acquired(id), userId: 'u-7' });
      }
      const found = await ledger.openItemsOf('u-7', '101');
      expect(ids(found)).toEqual(['closed', 'holder-released', 'kept', 'path-released']);
      expect(found[2]).toEqual(await subject.stored('kept'));
      now += MINUTE;
      await ledger.recordHeartbeat('kept', 'w-1', 120);
      const claim = await ledger.claim((await subject.stored('closed'))!, 300);
      await ledger.claimRecorder([claim!]).record({ ...failed('closed', 1), userId: 'u-7' });
      await ledger.record({ ...failed('kept', 1), userId: 'u-7' });
      expect(ids(await ledger.openItemsOf('u-7'))).toEqual([
        'closed',
        'holder-released',
        'kept',
        'path-released',
      ]);
      expect(await subject.stored('kept')).toMatchObject({ status: 'RELEASE_FAILED', openUserId: 'u-7' });
      await ledger.recordReleased('holder-released');
      await ledger.record({ ...released('path-released'), userId: 'u-7' });
      expect(await ledger.closeExpired((await subject.stored('closed'))!)).toBe(true);
      expect(ids(await ledger.openItemsOf('u-7'))).toEqual(['kept']);
      for (const id of ['holder-released', 'path-released', 'closed']) {
        expect(await subject.stored(id)).not.toHaveProperty('openUserId');
      }
    });

    it('an item the release path creates is never in the user index', async () => {
      await ledger.record({ ...failed('new', 1), userId: 'u-7' });
      expect(await subject.stored('new')).not.toHaveProperty('openUserId');
      expect(await ledger.openItemsOf('u-7')).toEqual([]);
    });

    it('finds all of a user with many open items, over several BatchGetItem requests', async () => {
      const many = manyItems(230, 'm', (lockId) => mine(lockId));
      await subject.seed([
        ...many,
        ...manyItems(50, 'x', (lockId) => ledgerItem({ lockId, openUserId: 'user-1' })),
      ]);
      expect(await ledger.openItemsOf('u-7')).toEqual(many);
    });
  });
});
