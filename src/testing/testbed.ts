/**
 * The test kit for worker teams (`koodrive-lock-releaser/testing`): createTestbed() starts, in-process and
 * offline, the KooDrive emulator on 127.0.0.1 (the documented request checks, HMAC authentication, the
 * 10-minute expiry, one lock per user and module, scripted faults), the in-memory ledger that passes
 * DynamoLedger's contract tests, and a clock (the real one, or a virtual one the test advances), and builds
 * LockHolders wired to them through the production KooDrive client.
 */
import { randomBytes } from 'node:crypto';
import { LockHolder, type LockHolderOptions } from '../holder';
import type { HolderLedger, LedgerItem } from '../core/lease';
import { systemClock, type Clock } from '../core/model';
import type { KooDriveLocks } from '../ledger/holder';
import { KooDriveClient } from '../koodrive/client';
import { parseSecret } from '../koodrive/secret';
import { faultRuleOf, operationOf, type KooDriveFailure, type KooDriveOperation } from './faults';
import { startKooDriveEmulator, type KooDriveEmulator, type RecordedRequest } from './koodrive-emulator';
import { MemoryLedger } from './memory-ledger';
import { turn, VirtualClock } from './virtual-clock';

export interface TestbedOptions {
  /**
   * `'real'` (default): time passes by itself. `'virtual'`: time stands still until `clock.advance(ms)`, which
   * fires the holders' heartbeats and deadlines due meanwhile and returns when what they started has finished.
   */
  clock?: 'real' | 'virtual';
  /** Epoch ms the virtual clock starts at; default 2026-01-01T00:00:00Z. */
  startAt?: number;
}

/** A request the emulator received, in the order it answered them. */
export interface KooDriveRequest extends RecordedRequest {
  operation: KooDriveOperation | 'other';
}

export interface TestbedClock extends Clock {
  readonly virtual: boolean;
  /**
   * Virtual: moves time forward, firing every timer due and waiting for the holders' calls they start.
   * Real: waits `ms`.
   */
  advance(ms: number): Promise<void>;
}

/** LockHolder options for a testbed holder: everything but the ports and settings the testbed supplies. */
export type TestbedHolderOptions = Omit<
  LockHolderOptions,
  | 'koodrive'
  | 'ledger'
  | 'clock'
  | 'settings'
  | 'secretId'
  | 'tableName'
  | 'dynamodb'
  | 'secretsManager'
  | 'region'
>;

export interface Testbed {
  /** A LockHolder on the testbed's emulator, ledger and clock. */
  holder(options?: TestbedHolderOptions): LockHolder;
  clock: TestbedClock;
  /** Resolves when no holder call to KooDrive or the ledger is in flight (after a full event-loop turn). */
  settled(): Promise<void>;
  koodrive: {
    /** http://127.0.0.1:<port> */
    readonly url: string;
    /** The KooDrive settings (the secret's JSON) that reach the emulator, for holders built by hand. */
    readonly settings: { endpoint: string; appId: string; appSecret: string };
    /** The lock exists, is not released and has not expired (by the testbed's clock). */
    isLive(lockId: string): boolean;
    /** Scripts a failure; rules apply in the order given, each until its `times` are used up. */
    fail(failure: KooDriveFailure): void;
    /** Removes every scripted failure. */
    heal(): void;
    /** The requests received so far, in the order answered. */
    readonly requests: KooDriveRequest[];
    /** The emulator itself (seedLock, locks, setLatency, …). */
    readonly emulator: KooDriveEmulator;
  };
  ledger: {
    /** The item as stored now (a copy); undefined when the ledger has none. */
    item(lockId: string): LedgerItem | undefined;
    items(): LedgerItem[];
    /** The in-memory ledger itself (a HolderLedger and a SweepLedger). */
    readonly memory: MemoryLedger;
  };
  /** Closes every holder built (releasing its locks), then the emulator. */
  close(): Promise<void>;
}

export async function createTestbed(options: TestbedOptions = {}): Promise<Testbed> {
  const virtual = (options.clock ?? 'real') === 'virtual';
  if (options.clock !== undefined && options.clock !== 'real' && options.clock !== 'virtual') {
    throw new RangeError(`clock must be 'real' or 'virtual', got ${String(options.clock)}`);
  }
  const inFlight = new Set<Promise<unknown>>();
  const settled = async (): Promise<void> => {
    for (;;) {
      await turn();
      if (inFlight.size === 0) return;
      await Promise.allSettled([...inFlight]);
    }
  };
  const virtualClock = virtual ? new VirtualClock(options.startAt, settled) : undefined;
  const base: Clock = virtualClock ?? systemClock;
  const clock: TestbedClock = {
    virtual,
    now: () => base.now(),
    monotonic: () => base.monotonic(),
    sleep: (ms) => base.sleep(ms),
    setTimer: (ms, fn) => base.setTimer(ms, fn),
    advance: (ms) => (virtualClock ? virtualClock.advance(ms) : new Promise((r) => setTimeout(r, ms))),
  };

  const appId = 'testbed-app';
  const appSecret = randomBytes(24).toString('base64url');
  const emulator = await startKooDriveEmulator({ apps: { [appId]: appSecret }, now: () => clock.now() });
  const settings = { endpoint: emulator.url, appId, appSecret };
  const parsed = { settings: parseSecret(JSON.stringify(settings), 'the testbed settings'), version: 1 };
  const client = new KooDriveClient({
    settings: { current: () => Promise.resolve(parsed) },
    timeoutMs: 5000,
    now: () => clock.now(),
  });
  const memory = new MemoryLedger({ now: () => clock.now() });

  /** Counts each call while it runs, so `settled()` can wait for it. */
  const track = <T>(call: Promise<T>): Promise<T> => {
    inFlight.add(call);
    const done = () => inFlight.delete(call);
    call.then(done, done);
    return call;
  };
  const koodrive: KooDriveLocks = {
    createLock: (userId, moduleCode) => track(client.createLock(userId, moduleCode)),
    renewLock: (lock) => track(client.renewLock(lock)),
    releaseLock: (lock) => track(client.releaseLock(lock)),
  };
  const ledger: HolderLedger = {
    recordAcquired: (lock) => track(memory.recordAcquired(lock)),
    recordHeartbeat: (lockId, holder, leaseSeconds) =>
      track(memory.recordHeartbeat(lockId, holder, leaseSeconds)),
    recordReleased: (lockId) => track(memory.recordReleased(lockId)),
    record: (result) => track(memory.record(result)),
  };
  const holders: LockHolder[] = [];
  let closing: Promise<void> | undefined;

  return {
    holder(holderOptions = {}) {
      if (closing) throw new Error('the testbed is closed');
      const holder = new LockHolder({ name: 'testbed-worker', ...holderOptions, koodrive, ledger, clock });
      holders.push(holder);
      return holder;
    },
    clock,
    settled,
    koodrive: {
      url: emulator.url,
      settings,
      isLive: (lockId) => emulator.isHeld(lockId),
      fail(failure) {
        emulator.fault(faultRuleOf(failure));
      },
      heal: () => emulator.clearFaults(),
      get requests() {
        return emulator.requests.map((r): KooDriveRequest => ({
          ...r,
          operation: operationOf(r.method),
        }));
      },
      emulator,
    },
    ledger: {
      item(lockId) {
        const item = memory.items.get(lockId);
        return item && structuredClone(item);
      },
      items: () => [...memory.items.values()].map((item) => structuredClone(item)),
      memory,
    },
    close() {
      closing ??= (async () => {
        let done = false;
        const closed = Promise.all(holders.map((holder) => holder.close())).finally(() => (done = true));
        // On virtual time, close()'s wait for work and the release's retries need the clock to move.
        for (let step = 0; virtualClock && !done && step < 600; step += 1) await virtualClock.advance(100);
        await closed;
        await emulator.close();
      })();
      return closing;
    },
  };
}
