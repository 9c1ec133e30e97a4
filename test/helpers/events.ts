import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const EVENTS_DIR = join(import.meta.dirname, '..', '..', 'events');
const cache = new Map<string, unknown>();

/** A fresh deep copy of a sample under events/, so a test may change it freely. */
export function loadEvent<T = unknown>(name: string): T {
  if (!cache.has(name)) cache.set(name, JSON.parse(readFileSync(join(EVENTS_DIR, name), 'utf8')));
  return structuredClone(cache.get(name)) as T;
}
