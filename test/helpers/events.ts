import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SQSEvent, SQSRecord } from 'aws-lambda';

const EVENTS_DIR = join(import.meta.dirname, '..', '..', 'events');
const cache = new Map<string, unknown>();

/** A fresh deep copy of a sample under events/, so a test may change it freely. */
export function loadEvent<T = unknown>(name: string): T {
  if (!cache.has(name)) cache.set(name, JSON.parse(readFileSync(join(EVENTS_DIR, name), 'utf8')));
  return structuredClone(cache.get(name)) as T;
}

/** An SQS record shaped like the samples' (the first record of events/sqs-release.json), with this ID and body. */
export function sqsRecord(messageId: string, body: string): SQSRecord {
  const template = loadEvent<SQSEvent>('sqs-release.json').Records[0] as SQSRecord;
  return { ...template, messageId, receiptHandle: `rh-${messageId}`, body, md5OfBody: '' };
}
