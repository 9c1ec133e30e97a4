/**
 * The local stack for a test file: started once, torn down after; before each test the handlers' environment
 * points at it and the container is new (resetApp), after each test the emulator and the secret are as started.
 */
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import {
  applyEnv,
  LOCAL_SECRET_NAME,
  startLocalStack,
  type LocalStack,
  type LocalStackOptions,
} from '../../dev/stack';
import { resetApp } from '../../src/wiring';

export function useLocalStack(
  options: LocalStackOptions = {},
  env: Record<string, string | undefined> = {},
): () => LocalStack {
  let stack: LocalStack | undefined;
  let restoreEnv: (() => void) | undefined;
  const current = (): LocalStack => {
    if (!stack) throw new Error('the local stack is not started yet (use it inside a test or hook)');
    return stack;
  };
  beforeAll(async () => {
    stack = await startLocalStack(options);
  });
  afterAll(async () => {
    await stack?.close();
  });
  beforeEach(() => {
    restoreEnv = applyEnv({ ...current().env, ...env });
    resetApp();
  });
  afterEach(() => {
    restoreEnv?.();
    resetApp();
    current().koodrive.reset();
    current().secrets.putSecret(LOCAL_SECRET_NAME, current().secret);
  });
  return current;
}
