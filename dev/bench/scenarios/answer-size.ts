/**
 * How big the release function's answer and its logs get for hostile payloads: many over-long lock IDs (1,000
 * characters each), and many entries whose user ID is 1,000 characters long. A fresh worker runs the release
 * handler (src/) on the stack without the ledger, at the deployed log level, and counts the answer's JSON bytes and
 * the JSON log lines it wrote.
 */
import type { Harness } from '../harness';

const LONG = 1000;

export async function answerSize(h: Harness): Promise<void> {
  const count = h.sizes.answerSizeCount;
  await h.resetEmulator(0);
  const cases = [
    {
      id: 'long-lock-ids',
      what: `${count} lock IDs of ${LONG} characters`,
      event: { lockIds: Array.from({ length: count }, (_, i) => `${i}-${'k'.repeat(LONG - 6)}`) },
    },
    {
      id: 'long-user-id',
      what: `${count} entries with a ${LONG}-character user ID`,
      event: {
        locks: Array.from({ length: count }, (_, i) => ({
          lockId: `lock-${i}`,
          userId: `${h.userId}${'u'.repeat(LONG - h.userId.length)}`,
        })),
      },
    },
  ];
  for (const c of cases) {
    const w = await h.worker(h.stackEnv(undefined, { POWERTOOLS_METRICS_DISABLED: 'true' }));
    try {
      const r = await w.call('answer', c.event, false);
      h.add(c.id, {
        what: `Direct invoke of ${c.what}: the answer's size and the log lines written`,
        goal: '—',
        measured: `answer ${(r.answerBytes / 1024).toFixed(1)} KB, ${r.logLines} log lines (${(r.logBytes / 1024).toFixed(1)} KB), ${Math.round(r.ms)} ms`,
        value: r.answerBytes / 1024,
      });
    } finally {
      await w.stop();
    }
  }
}
