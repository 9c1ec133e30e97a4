/**
 * The KooDrive emulator in a process of its own, so that its CPU (HTTP parsing, HMAC verification) is not
 * counted against the client under test. Started by the benchmark (startChild); tells it its URL, then
 * answers commands: seed locks, set the latency, read the counters and its own CPU time.
 */
import { startKooDriveEmulator } from '../../src/testing/koodrive-emulator';
import { LOCAL_APP_ID, LOCAL_APP_SECRET } from '../stack';
import { serve } from './ipc';

const emulator = await startKooDriveEmulator({ apps: { [LOCAL_APP_ID]: LOCAL_APP_SECRET } });

export interface EmulatorStats {
  connectionsOpened: number;
  requests: number;
  /** Requests answered with another status than 200 (dropped ones included). */
  notOk: number;
  /** CPU time of this process since it started (user + system). */
  cpuMs: number;
}

const commands = {
  /** Holds locks for `userId` (module 102 unless given): the given IDs, or `count` new ones. Returns their IDs. */
  seed(
    userId: string,
    spec: ({ count: number } | { lockIds: string[] }) & { moduleCode?: string; expiresAt?: number },
  ): string[] {
    const opts = spec.expiresAt === undefined ? {} : { expiresAt: spec.expiresAt };
    if ('lockIds' in spec) {
      for (const lockId of spec.lockIds) emulator.seedLock(userId, spec.moduleCode, { ...opts, lockId });
      return spec.lockIds;
    }
    return Array.from({ length: spec.count }, () => emulator.seedLock(userId, spec.moduleCode, opts));
  },
  isHeld(lockId: string): boolean {
    return emulator.isHeld(lockId);
  },
  latency(ms: number): void {
    emulator.setLatency(ms);
  },
  stats(): EmulatorStats {
    const cpu = process.cpuUsage();
    let notOk = 0;
    for (const r of emulator.requests) if (r.status !== 200) notOk += 1;
    return {
      connectionsOpened: emulator.connectionsOpened,
      requests: emulator.requests.length,
      notOk,
      cpuMs: (cpu.user + cpu.system) / 1000,
    };
  },
  /** Forgets locks, requests, latency and counters (the CPU clock keeps running). */
  reset(): void {
    emulator.reset();
  },
};

export type EmulatorApi = typeof commands;

serve(commands, { url: emulator.url });
