import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setImmediate } from 'node:timers/promises';
import { Agent } from 'undici';
import type { Dispatcher } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import {
  startKooDriveEmulator,
  verifyAppSignature,
  type EmulatorOptions,
  type KooDriveEmulator,
} from '../../src/testing/koodrive-emulator';
import type { AttemptOutcome } from '../../src/core/model';
import {
  classifyAnswer,
  isLoopbackHost,
  KooDriveClient,
  LOCK_PATH,
  parseRetryAfter,
} from '../../src/koodrive/client';
import type { KooDriveClientOptions } from '../../src/koodrive/client';
import { DEFAULT_PROTOCOL } from '../../src/koodrive/settings';
import type {
  KooDriveAuth,
  KooDriveSettings,
  ProtocolOptions,
  SettingsSource,
} from '../../src/koodrive/settings';

const APP_ID = 'test-app-id';
const APP_SECRET = 'test-app-secret-5f0c2a9e';
const ACCESS_TOKEN = 'test-access-token-91b7d3';
const LOCK = { lockId: '78e41c7e-db02-4d55-85b3-8153e4fefd2e@102', userId: '1505084218764547200' };
const CREDENTIALS_VERSION = 7;

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  receivedAt: number;
}

type Handler = (req: Received, res: ServerResponse) => void;

interface TestServer {
  url: string;
  requests: Received[];
  /** TCP connections accepted so far. */
  connections: () => number;
}

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** A real HTTP server on 127.0.0.1, port 0, closed after the test. */
async function startServer(handler: Handler): Promise<TestServer> {
  const requests: Received[] = [];
  let connections = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const receivedAt = Date.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
        receivedAt,
      };
      requests.push(received);
      res.on('error', () => {});
      handler(received, res);
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests, connections: () => connections };
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Handler {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
}

function settingsSource(
  endpoint: string,
  changes: { auth?: KooDriveAuth; protocol?: Partial<ProtocolOptions> } = {},
) {
  const settings: KooDriveSettings = {
    endpoint,
    auth: changes.auth ?? { mode: 'app', appId: APP_ID, appSecret: APP_SECRET },
    protocol: { ...DEFAULT_PROTOCOL, ...changes.protocol },
  };
  const source: SettingsSource = {
    current: () => Promise.resolve({ settings, version: CREDENTIALS_VERSION }),
  };
  return source;
}

/** A real undici Agent that counts the requests dispatched through it. */
class CountingAgent extends Agent {
  dispatched = 0;
  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    this.dispatched++;
    return super.dispatch(options, handler);
  }
}

function newAgent(): CountingAgent {
  const agent = new CountingAgent();
  cleanups.push(() => agent.destroy());
  return agent;
}

function clientFor(
  endpoint: string,
  changes: Parameters<typeof settingsSource>[1] = {},
  options: Partial<KooDriveClientOptions> = {},
) {
  const dispatcher = newAgent();
  const client = new KooDriveClient({
    settings: settingsSource(endpoint, changes),
    dispatcher,
    timeoutMs: 2000,
    ...options,
  });
  return { client, dispatcher };
}

async function releaseAgainst(handler: Handler): Promise<{ outcome: AttemptOutcome; server: TestServer }> {
  const server = await startServer(handler);
  const { client } = clientFor(server.url);
  return { outcome: await client.releaseLock(LOCK), server };
}

/**
 * Checks the signature of a received request with the emulator's verifier (written from the public docs alone,
 * pinned by the known-answer vectors in test/dev/koodrive-emulator.test.ts), never with the production signer.
 * Returns the signed header names.
 */
function expectValidSignature(req: Received, dateLineInStringToSign = false): string[] {
  const authorization = String(req.headers.authorization);
  const q = req.url.indexOf('?');
  const headers = Object.fromEntries(
    Object.entries(req.headers).map(([name, value]) => [
      name,
      Array.isArray(value) ? value.join(', ') : value,
    ]),
  );
  const verdict = verifyAppSignature(
    authorization,
    {
      method: req.method,
      path: q < 0 ? req.url : req.url.slice(0, q),
      query: q < 0 ? '' : req.url.slice(q + 1),
      headers,
      body: req.body,
    },
    { apps: { [APP_ID]: APP_SECRET }, dateLineInStringToSign },
  );
  expect(verdict).toEqual({ ok: true, appId: APP_ID });
  // The same request with another key must not verify: the check looks at the signature at all.
  expect(
    verifyAppSignature(
      authorization,
      { method: req.method, path: req.url, headers, body: req.body },
      {
        apps: { [APP_ID]: `${APP_SECRET}-other` },
        dateLineInStringToSign,
      },
    ),
  ).toEqual({ ok: false, reason: 'signature mismatch' });
  return /SignedHeaders=([^,]+)/.exec(authorization)?.[1]?.split(';') ?? [];
}

function parseXDate(value: unknown): number {
  const text = String(value);
  expect(text).toMatch(/^\d{8}T\d{6}Z$/);
  return Date.parse(text.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));
}

describe('KooDriveClient.releaseLock against a real HTTP server', () => {
  it('sends a signed DELETE with the lock, user and date headers, and reports released', async () => {
    const { outcome, server } = await releaseAgainst(json(200, { code: 0, msg: 'success' }));
    expect(outcome).toEqual({ ok: true, outcome: 'released' });
    expect(server.requests).toHaveLength(1);
    const [req] = server.requests;
    if (!req) throw new Error('no request');
    expect(req.method).toBe('DELETE');
    expect(req.url).toBe(LOCK_PATH);
    expect(req.headers['x-backup-lock-id']).toBe(LOCK.lockId);
    expect(req.headers['x-user-id']).toBe(LOCK.userId);
    expect(req.headers.host).toBe(server.url.replace('http://', ''));
    expect(req.body).toHaveLength(0);
    expect(expectValidSignature(req)).toEqual(['host', 'x-date', 'x-user-id']);
  });

  it('dates the request a little before the server receives it, never after', async () => {
    const server = await startServer(json(200, { code: 0 }));
    const { client } = clientFor(server.url);
    for (let i = 0; i < 3; i++) await client.releaseLock(LOCK);
    for (const req of server.requests) {
      const xDate = parseXDate(req.headers['x-date']);
      expect(xDate).toBeLessThanOrEqual(req.receivedAt);
      expect(req.receivedAt - xDate).toBeLessThan(5000);
    }
  });

  it('takes the X-Date from the injected clock minus the back-dating', async () => {
    const server = await startServer(json(200, { code: 0 }));
    const { client } = clientFor(server.url, {}, { now: () => Date.UTC(2024, 8, 9, 3, 33, 26, 500) });
    await client.releaseLock(LOCK);
    expect(server.requests[0]?.headers['x-date']).toBe('20240909T033325Z');
  });

  it('signs the extra headers and the date line that the protocol options ask for', async () => {
    const server = await startServer(json(200, { code: 0 }));
    const { client } = clientFor(server.url, {
      protocol: { extraSignedHeaders: ['X-Backup-Lock-Id'], dateLineInStringToSign: true },
    });
    expect(await client.releaseLock(LOCK)).toEqual({ ok: true, outcome: 'released' });
    const [req] = server.requests;
    if (!req) throw new Error('no request');
    expect(expectValidSignature(req, true)).toEqual(['host', 'x-backup-lock-id', 'x-date', 'x-user-id']);
  });

  it('sends Authorization: Bearer <token> in token mode, with the user and date headers', async () => {
    const server = await startServer(json(200, { code: 0 }));
    const { client } = clientFor(server.url, { auth: { mode: 'token', accessToken: ACCESS_TOKEN } });
    expect(await client.releaseLock(LOCK)).toEqual({ ok: true, outcome: 'released' });
    const headers = server.requests[0]?.headers;
    expect(headers?.authorization).toBe(`Bearer ${ACCESS_TOKEN}`);
    expect(headers?.['x-user-id']).toBe(LOCK.userId);
    expect(headers?.['x-date']).toMatch(/^\d{8}T\d{6}Z$/);
  });

  it('accepts the code as the string "0"', async () => {
    const { outcome } = await releaseAgainst(json(200, { code: '0', msg: 'success' }));
    expect(outcome).toEqual({ ok: true, outcome: 'released' });
  });

  it('reports alreadyReleased when KooDrive says the lock does not exist (13000309 with HTTP 400)', async () => {
    const { outcome } = await releaseAgainst(json(400, { code: 13000309, msg: 'resource does not exist' }));
    expect(outcome).toEqual({ ok: true, outcome: 'alreadyReleased' });
  });

  it('treats HTTP 200 with a non-zero code as a permanent failure carrying code, message and credentials version', async () => {
    const { outcome } = await releaseAgainst(json(200, { code: 13000102, msg: 'parameter check failed' }));
    expect(outcome).toEqual({
      ok: false,
      error: { kind: 'permanent', httpStatus: 200, code: '13000102', message: 'parameter check failed' },
      credentialsVersion: CREDENTIALS_VERSION,
    });
  });

  it('retries code 13000201 whatever the HTTP status', async () => {
    const { outcome } = await releaseAgainst(
      json(400, { code: '13000201', msg: 'internal invocation failure' }),
    );
    expect(outcome).toMatchObject({
      ok: false,
      error: { kind: 'retryable', httpStatus: 400, code: '13000201' },
    });
  });

  it('reports auth for HTTP 401 and for a gateway APIGW.0301 body', async () => {
    const plain = await releaseAgainst(json(401, 'Unauthorized'));
    expect(plain.outcome).toMatchObject({
      ok: false,
      error: { kind: 'auth', httpStatus: 401 },
      credentialsVersion: CREDENTIALS_VERSION,
    });
    const gateway = await releaseAgainst(
      json(401, {
        error_code: 'APIGW.0301',
        error_msg: 'Incorrect app authentication information',
        request_id: 'r',
      }),
    );
    expect(gateway.outcome).toMatchObject({
      ok: false,
      error: { kind: 'auth', code: 'APIGW.0301', message: 'Incorrect app authentication information' },
    });
  });

  it('retries gateway throttling (APIGW.0308, 429) and passes on Retry-After', async () => {
    const { outcome } = await releaseAgainst(
      json(
        429,
        { error_code: 'APIGW.0308', error_msg: 'The throttling threshold has been reached' },
        { 'retry-after': '3' },
      ),
    );
    expect(outcome).toMatchObject({
      ok: false,
      error: { kind: 'retryable', httpStatus: 429, code: 'APIGW.0308' },
      retryAfterMs: 3000,
    });
  });

  it.each([500, 503])('retries HTTP %i', async (status) => {
    const { outcome } = await releaseAgainst(json(status, '<html>oops</html>'));
    expect(outcome).toMatchObject({ ok: false, error: { kind: 'retryable', httpStatus: status } });
  });

  it('does not follow a redirect: a 3xx is permanent', async () => {
    const server = await startServer((req, res) => {
      if (req.url !== LOCK_PATH) return json(200, { code: 0 })(req, res);
      res.writeHead(307, { location: '/elsewhere' });
      res.end();
    });
    const { client } = clientFor(server.url);
    expect(await client.releaseLock(LOCK)).toMatchObject({
      ok: false,
      error: { kind: 'permanent', httpStatus: 307, message: 'redirect (HTTP 307) not followed' },
    });
    expect(server.requests.map((r) => r.url)).toEqual([LOCK_PATH]);
  });

  it('reports a dropped connection as retryable with the undici error code', async () => {
    const { outcome } = await releaseAgainst((_req, res) => res.socket?.destroy());
    expect(outcome).toMatchObject({
      ok: false,
      error: { kind: 'retryable' },
      credentialsVersion: CREDENTIALS_VERSION,
    });
    if (outcome.ok) throw new Error('expected a failure');
    expect(outcome.error.message).toMatch(/UND_ERR_SOCKET|ECONNRESET/);
  });

  it('reports a refused connection as retryable with ECONNREFUSED', async () => {
    const server = await startServer(json(200, { code: 0 }));
    const url = server.url;
    await cleanups.pop()?.(); // closes the server: its port now refuses connections
    const { client } = clientFor(url);
    const outcome = await client.releaseLock(LOCK);
    expect(outcome).toMatchObject({ ok: false, error: { kind: 'retryable' } });
    if (outcome.ok) throw new Error('expected a failure');
    expect(outcome.error.message).toContain('ECONNREFUSED');
  });

  it('gives up on a server slower than timeoutMs and reports it retryable', async () => {
    // Answers after 3 s, long after the client gave up (the timer is cleared when the socket closes).
    const server = await startServer((req, res) => {
      const timer = setTimeout(() => json(200, { code: 0 })(req, res), 3000);
      res.on('close', () => clearTimeout(timer));
    });
    const { client } = clientFor(server.url, {}, { timeoutMs: 200 });
    const started = Date.now();
    const outcome = await client.releaseLock(LOCK);
    expect(outcome).toEqual({
      ok: false,
      error: { kind: 'retryable', message: 'timed out after 200 ms' },
      credentialsVersion: CREDENTIALS_VERSION,
    });
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('bounds the whole attempt, body included, by timeoutMs', async () => {
    const server = await startServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"code":'); // headers and half a body now, the rest after 3 s
      const timer = setTimeout(() => res.end('0}'), 3000);
      res.on('close', () => clearTimeout(timer));
    });
    const { client } = clientFor(server.url, {}, { timeoutMs: 200 });
    expect(await client.releaseLock(LOCK)).toMatchObject({
      ok: false,
      error: { kind: 'retryable', message: 'timed out after 200 ms' },
    });
  });

  it('stops reading a huge body and classifies the answer by its status', async () => {
    const huge =
      (status: number): Handler =>
      (_req, res) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.write(`{"code":0,"msg":"${'x'.repeat(200_000)}`);
        res.end('"}');
      };
    const ok = await releaseAgainst(huge(200));
    expect(ok.outcome).toMatchObject({ ok: false, error: { kind: 'permanent', httpStatus: 200 } });
    if (ok.outcome.ok) throw new Error('expected a failure');
    expect(ok.outcome.error.message).toContain('response body over 65536 bytes');
    const busy = await releaseAgainst(huge(503));
    expect(busy.outcome).toMatchObject({ ok: false, error: { kind: 'retryable', httpStatus: 503 } });
  });

  it('honours a smaller maxResponseBytes', async () => {
    const server = await startServer(json(200, { code: 0, msg: 'success' }));
    const { client } = clientFor(server.url, {}, { maxResponseBytes: 10 });
    expect(await client.releaseLock(LOCK)).toMatchObject({ ok: false, error: { kind: 'permanent' } });
  });

  it('reuses one connection for sequential requests, failures included', async () => {
    let n = 0;
    const server = await startServer((req, res) =>
      n++ % 2 === 0 ? json(200, { code: 0 })(req, res) : json(503, { msg: 'busy' })(req, res),
    );
    const { client } = clientFor(server.url);
    for (let i = 0; i < 6; i++) {
      await client.releaseLock(LOCK);
      // undici marks the connection idle in a later tick than the one that ends the body; a request
      // sent in that very tick would open a second connection.
      await setImmediate();
    }
    expect(server.requests).toHaveLength(6);
    expect(server.connections()).toBe(1);
  });
});

describe('transport and input rules', () => {
  it('refuses http:// to a non-loopback host without sending a request', async () => {
    const { client, dispatcher } = clientFor('http://koodrive.example.com');
    const outcome = await client.releaseLock(LOCK);
    expect(outcome).toMatchObject({
      ok: false,
      error: { kind: 'permanent' },
      credentialsVersion: CREDENTIALS_VERSION,
    });
    if (outcome.ok) throw new Error('expected a failure');
    expect(outcome.error.message).toMatch(/refusing plain http:\/\/ .*koodrive\.example\.com.*https:\/\//);
    expect(dispatcher.dispatched).toBe(0);
  });

  it('refuses an endpoint with a path or credentials without sending a request', async () => {
    for (const endpoint of [
      'https://host.example/api',
      'https://user:pw@host.example',
      'not a url',
      'ftp://h',
    ]) {
      const { client, dispatcher } = clientFor(endpoint);
      const outcome = await client.releaseLock(LOCK);
      expect(outcome).toMatchObject({ ok: false, error: { kind: 'permanent' } });
      expect(JSON.stringify(outcome)).not.toContain('pw');
      expect(dispatcher.dispatched).toBe(0);
    }
  });

  it('knows the loopback hosts', () => {
    for (const host of ['localhost', '127.0.0.1', '127.10.20.30', '[::1]', '::1', 'LOCALHOST']) {
      expect(isLoopbackHost(host)).toBe(true);
    }
    for (const host of ['128.0.0.1', 'localhost.example.com', '10.0.0.1', '[::2]', 'example.com']) {
      expect(isLoopbackHost(host)).toBe(false);
    }
  });

  it('names the ID at fault', async () => {
    const { client } = clientFor('http://127.0.0.1:9');
    expect(await client.releaseLock({ ...LOCK, lockId: 'has space' })).toEqual({
      ok: false,
      error: {
        kind: 'invalid-input',
        message: 'lockId may hold only printable ASCII characters (0x21-0x7E)',
      },
    });
    expect(await client.renewLock({ ...LOCK, userId: '' })).toEqual({
      ok: false,
      error: { kind: 'invalid-input', message: 'userId must not be empty' },
    });
  });

  it('keeps header-unsafe IDs out of the request as invalid-input', async () => {
    const server = await startServer(json(200, { code: 0 }));
    const { client } = clientFor(server.url);
    for (const lock of [
      { ...LOCK, lockId: 'abc\r\nX-Evil: 1' },
      { ...LOCK, lockId: 'has space' },
      { ...LOCK, userId: 'bücher' },
      { ...LOCK, userId: '' },
    ]) {
      expect(await client.releaseLock(lock)).toMatchObject({ ok: false, error: { kind: 'invalid-input' } });
    }
    expect(await client.createLock('bad\tuser', '102')).toMatchObject({
      ok: false,
      error: { kind: 'invalid-input' },
    });
    expect(server.requests).toHaveLength(0);
  });

  it('never puts the app secret, the signature or the token into a returned message', async () => {
    // The server echoes the Authorization header and the configured secret in every kind of error body.
    let secret = '';
    let echoed: string[] = [];
    const server = await startServer((req, res) => {
      echoed = [String(req.headers.authorization), secret];
      const echo = echoed.join(' ');
      const bodies: [number, unknown][] = [
        [400, { code: 13000102, msg: `bad request: ${echo}` }],
        [401, { error_code: 'APIGW.0301', error_msg: `auth failed for ${echo}` }],
        [200, { code: 1, msg: `${'y'.repeat(190)}${echo}` }],
        [500, { code: 1, msg: echo }],
      ];
      const [status, body] = bodies[(server.requests.length - 1) % bodies.length] ?? [500, {}];
      json(status, body)(req, res);
    });
    const modes: [string, KooDriveAuth | undefined][] = [
      [APP_SECRET, undefined],
      [ACCESS_TOKEN, { mode: 'token', accessToken: ACCESS_TOKEN }],
    ];
    for (const [modeSecret, auth] of modes) {
      secret = modeSecret;
      const { client } = clientFor(server.url, auth ? { auth } : {});
      for (let i = 0; i < 4; i++) {
        const text = JSON.stringify(await client.releaseLock(LOCK));
        expect(text).not.toContain(secret);
        // Neither the whole Authorization value nor its signature.
        for (const part of echoed[0]?.split(/[ ,=]/).filter((p) => p.length >= 20) ?? []) {
          expect(text).not.toContain(part);
        }
        if (i < 2) expect(text).toContain('[redacted]');
      }
    }
  });
});

describe('KooDriveClient.createLock and renewLock', () => {
  it('creates a lock with a signed JSON body and returns its ID', async () => {
    const server = await startServer(json(200, { code: 0, msg: 'success', data: { lockId: LOCK.lockId } }));
    const { client } = clientFor(server.url);
    expect(await client.createLock(LOCK.userId, '102')).toEqual({ ok: true, lockId: LOCK.lockId });
    const [req] = server.requests;
    if (!req) throw new Error('no request');
    expect(req.method).toBe('POST');
    expect(req.body.toString()).toBe('{"moduleCode":"102"}');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['x-backup-lock-id']).toBeUndefined();
    expectValidSignature(req);
  });

  it('signs create without the x-backup-lock-id extra header it does not carry', async () => {
    const server = await startServer(json(200, { code: 0, data: { lockId: 'l-1' } }));
    const { client } = clientFor(server.url, { protocol: { extraSignedHeaders: ['x-backup-lock-id'] } });
    expect(await client.createLock(LOCK.userId, '101')).toEqual({ ok: true, lockId: 'l-1' });
    const [req] = server.requests;
    if (!req) throw new Error('no request');
    expect(expectValidSignature(req)).toEqual(['host', 'x-date', 'x-user-id']);
  });

  it('reports a create answer without a usable lock ID as permanent', async () => {
    const server = await startServer(json(200, { code: 0, data: {} }));
    const { client } = clientFor(server.url);
    expect(await client.createLock(LOCK.userId, '102')).toMatchObject({
      ok: false,
      error: { kind: 'permanent' },
      credentialsVersion: CREDENTIALS_VERSION,
    });
  });

  it('passes create failures through the shared classification', async () => {
    const server = await startServer(json(503, { code: 13000201, msg: 'retry' }, { 'retry-after': '1' }));
    const { client } = clientFor(server.url);
    expect(await client.createLock(LOCK.userId, '102')).toEqual({
      ok: false,
      error: { kind: 'retryable', httpStatus: 503, code: '13000201', message: 'retry' },
      retryAfterMs: 1000,
      credentialsVersion: CREDENTIALS_VERSION,
    });
  });

  it('renews a lock with a signed PATCH carrying the lock ID', async () => {
    const server = await startServer(json(200, { code: 0, msg: 'success' }));
    const { client } = clientFor(server.url);
    expect(await client.renewLock(LOCK)).toEqual({ ok: true });
    const [req] = server.requests;
    if (!req) throw new Error('no request');
    expect(req.method).toBe('PATCH');
    expect(req.headers['x-backup-lock-id']).toBe(LOCK.lockId);
    expectValidSignature(req);
  });

  it('reports renewing a lock that no longer exists as a permanent error', async () => {
    const server = await startServer(json(400, { code: 13000309, msg: 'resource does not exist' }));
    const { client } = clientFor(server.url);
    expect(await client.renewLock(LOCK)).toEqual({
      ok: false,
      error: { kind: 'permanent', httpStatus: 400, code: '13000309', message: 'lock no longer exists' },
      credentialsVersion: CREDENTIALS_VERSION,
    });
  });
});

describe('classifyAnswer', () => {
  const protocol = { alreadyReleasedCodes: ['13000309', '13000404'] };
  const kindOf = (status: number, body?: unknown) => {
    const outcome = classifyAnswer({ status, body }, protocol);
    return outcome.ok ? outcome.outcome : outcome.error.kind;
  };

  it.each([
    [200, { code: 0 }, 'released'],
    [200, { code: '0' }, 'released'],
    [200, { code: ' 0 ' }, 'released'],
    [500, { code: 0 }, 'retryable'],
    [400, { code: 13000309 }, 'alreadyReleased'],
    [200, { code: '13000404' }, 'alreadyReleased'],
    [404, { code: 13000309 }, 'alreadyReleased'],
    [200, { code: 13000201 }, 'retryable'],
    [400, { code: 13000201 }, 'retryable'],
    [401, {}, 'auth'],
    [403, undefined, 'auth'],
    [400, { error_code: 'APIGW.0301' }, 'auth'],
    [401, { error_code: 'APIGW.0303' }, 'auth'],
    [429, { error_code: 'APIGW.0308' }, 'retryable'],
    [400, { error_code: 'APIGW.0101' }, 'permanent'],
    [429, undefined, 'retryable'],
    [502, undefined, 'retryable'],
    [200, { code: 13000102 }, 'permanent'],
    [200, undefined, 'permanent'],
    [200, { msg: 'no code' }, 'permanent'],
    [301, undefined, 'permanent'],
    [400, { code: 13000102 }, 'permanent'],
    [404, undefined, 'permanent'],
  ])('classifies HTTP %i with %j as %s', (status, body, expected) => {
    expect(kindOf(status, body)).toBe(expected);
  });

  it('clips KooDrive messages to 200 characters and strips control characters', () => {
    const outcome = classifyAnswer(
      { status: 400, body: { code: 1, msg: `a\r\nb${'z'.repeat(500)}` } },
      protocol,
    );
    if (outcome.ok) throw new Error('expected a failure');
    expect(outcome.error.message.length).toBeLessThanOrEqual(200);
    expect(outcome.error.message.startsWith('a b')).toBe(true);
  });

  it('passes retryAfterMs on failures only', () => {
    expect(classifyAnswer({ status: 503, retryAfterMs: 5000 }, protocol)).toMatchObject({
      retryAfterMs: 5000,
    });
    expect(classifyAnswer({ status: 200, body: { code: 0 }, retryAfterMs: 5000 }, protocol)).toEqual({
      ok: true,
      outcome: 'released',
    });
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2025, 10, 3, 7, 1, 40);

  it('reads delay-seconds and HTTP-dates, never negative', () => {
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter(' 120 ', now)).toBe(120_000);
    expect(parseRetryAfter(['2', '9'], now)).toBe(2000);
    expect(parseRetryAfter('Mon, 03 Nov 2025 07:01:50 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Mon, 03 Nov 2025 07:00:00 GMT', now)).toBe(0);
  });

  it('ignores absent and malformed values', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
  });
});

describe('signatures the emulator verifies (real HTTP on 127.0.0.1)', () => {
  async function emulator(options: EmulatorOptions = {}): Promise<KooDriveEmulator> {
    const started = await startKooDriveEmulator({
      apps: { [APP_ID]: APP_SECRET },
      tokens: [ACCESS_TOKEN],
      ...options,
    });
    cleanups.push(() => started.close());
    return started;
  }

  it('create, renew and release are each signed as the emulator expects, and take effect', async () => {
    const kd = await emulator();
    const { client } = clientFor(kd.url);
    const created = await client.createLock(LOCK.userId, '101');
    if (!created.ok) throw new Error(`create failed: ${created.error.message}`);
    const lock = { lockId: created.lockId, userId: LOCK.userId };
    expect(kd.isHeld(lock.lockId)).toBe(true);
    expect(await client.renewLock(lock)).toEqual({ ok: true });
    expect(await client.releaseLock(lock)).toEqual({ ok: true, outcome: 'released' });
    expect(kd.isHeld(lock.lockId)).toBe(false);
    expect(kd.requests.map((r) => [r.method, r.status, r.authOk])).toEqual([
      ['POST', 200, true],
      ['PATCH', 200, true],
      ['DELETE', 200, true],
    ]);
  });

  it('with the extra signed header and the date line, when the emulator requires them', async () => {
    const kd = await emulator({
      dateLineInStringToSign: true,
      requiredSignedHeaders: ['host', 'x-backup-lock-id', 'x-date', 'x-user-id'],
    });
    const lockId = kd.seedLock(LOCK.userId);
    const { client } = clientFor(kd.url, {
      protocol: { extraSignedHeaders: ['X-Backup-Lock-Id'], dateLineInStringToSign: true },
    });
    expect(await client.renewLock({ lockId, userId: LOCK.userId })).toEqual({ ok: true });
    expect(await client.releaseLock({ lockId, userId: LOCK.userId })).toEqual({
      ok: true,
      outcome: 'released',
    });
    expect(kd.requests.map((r) => r.authOk)).toEqual([true, true]);
    // Without the date line, the same emulator refuses: the option changes what is signed.
    const plain = clientFor(kd.url, { protocol: { extraSignedHeaders: ['x-backup-lock-id'] } }).client;
    expect(await plain.renewLock({ lockId, userId: LOCK.userId })).toMatchObject({
      ok: false,
      error: { kind: 'auth', httpStatus: 401, code: 'APIGW.0301' },
    });
  });

  it('a token is accepted in token mode', async () => {
    const kd = await emulator();
    const lockId = kd.seedLock(LOCK.userId);
    const { client } = clientFor(kd.url, { auth: { mode: 'token', accessToken: ACCESS_TOKEN } });
    expect(await client.releaseLock({ lockId, userId: LOCK.userId })).toEqual({
      ok: true,
      outcome: 'released',
    });
    expect(kd.requests[0]?.authOk).toBe(true);
  });

  it('a signature keyed with another secret is refused (the emulator really checks)', async () => {
    const kd = await emulator();
    const lockId = kd.seedLock(LOCK.userId);
    const { client } = clientFor(kd.url, {
      auth: { mode: 'app', appId: APP_ID, appSecret: `${APP_SECRET}x` },
    });
    expect(await client.releaseLock({ lockId, userId: LOCK.userId })).toMatchObject({
      ok: false,
      error: { kind: 'auth', httpStatus: 401, code: 'APIGW.0301' },
      credentialsVersion: CREDENTIALS_VERSION,
    });
    expect(kd.isHeld(lockId)).toBe(true);
    expect(kd.requests.map((r) => [r.status, r.authOk])).toEqual([[401, false]]);
  });
});

describe('the known-answer vectors of the KooDrive docs, through the client', () => {
  // ../shared vectors, restated: AppSecret, host, X-Date, X-User-Id, and the expected signatures.
  const VECTOR_SECRET = 'example-app-secret-not-real';
  const VECTOR_HOST = 'intl.myhuaweicloud-koodrive.com';
  const VECTOR_USER = '1505084218764547200';
  const RELEASE_SIGNATURE = '3ed3c2eb2125a424fa1c3f237e22cdea4a2d8a3409ba10e2c58ee8072fa9540d';
  const CREATE_SIGNATURE = 'f9f58594a451c13f35c273c38b6b008a136cfb6cc94bacbb16103e388aa128cc';
  /** 20240909T033325Z plus the client's default one-second back-dating and some milliseconds. */
  const NOW = Date.UTC(2024, 8, 9, 3, 33, 26, 400);

  /** A dispatcher that keeps what it is asked to send and answers `{"code":0,…}` without any network. */
  function capturing(answer: unknown) {
    const sent: Dispatcher.DispatchOptions[] = [];
    const controller = { abort() {}, pause() {}, resume() {}, aborted: false, paused: false, reason: null };
    const dispatcher = {
      dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
        sent.push(options);
        const c = controller as unknown as Dispatcher.DispatchController;
        handler.onRequestStart?.(c, {});
        handler.onResponseStart?.(c, 200, { 'content-type': 'application/json' }, 'OK');
        handler.onResponseData?.(c, Buffer.from(JSON.stringify(answer)));
        handler.onResponseEnd?.(c, {});
        return true;
      },
    } as unknown as Dispatcher;
    const client = new KooDriveClient({
      settings: {
        current: () =>
          Promise.resolve({
            settings: {
              endpoint: `https://${VECTOR_HOST}`,
              auth: { mode: 'app', appId: 'my-app', appSecret: VECTOR_SECRET },
              protocol: DEFAULT_PROTOCOL,
            },
            version: 1,
          }),
      },
      dispatcher,
      timeoutMs: 1000,
      now: () => NOW,
    });
    return { client, sent };
  }

  it('release: DELETE signed with the documented signature', async () => {
    const { client, sent } = capturing({ code: 0, msg: 'success' });
    expect(await client.releaseLock({ lockId: LOCK.lockId, userId: VECTOR_USER })).toEqual({
      ok: true,
      outcome: 'released',
    });
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({
      origin: `https://${VECTOR_HOST}`,
      path: LOCK_PATH,
      method: 'DELETE',
      body: null,
    });
    expect(sent[0]?.headers).toEqual({
      host: VECTOR_HOST,
      'x-date': '20240909T033325Z',
      'x-user-id': VECTOR_USER,
      'x-backup-lock-id': LOCK.lockId,
      authorization: `HMAC-SHA256 AppId=my-app,SignedHeaders=host;x-date;x-user-id,Signature=${RELEASE_SIGNATURE}`,
    });
  });

  it('create: POST of {"moduleCode":"102"} signed with the documented signature', async () => {
    const { client, sent } = capturing({ code: 0, msg: 'success', data: { lockId: LOCK.lockId } });
    expect(await client.createLock(VECTOR_USER, '102')).toEqual({ ok: true, lockId: LOCK.lockId });
    expect(sent[0]).toMatchObject({ method: 'POST', body: '{"moduleCode":"102"}' });
    expect(sent[0]?.headers).toEqual({
      host: VECTOR_HOST,
      'x-date': '20240909T033325Z',
      'x-user-id': VECTOR_USER,
      'content-type': 'application/json',
      authorization: `HMAC-SHA256 AppId=my-app,SignedHeaders=host;x-date;x-user-id,Signature=${CREATE_SIGNATURE}`,
    });
  });
});

describe('the client around the exchange (scripted dispatcher)', () => {
  const ENDPOINT = 'https://kd.example';
  type Script = (options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) => void;
  const controller = { abort() {}, pause() {}, resume() {} } as unknown as Dispatcher.DispatchController;
  /** Answers `status` with `body` (and optional headers). */
  const answer =
    (status: number, body: string, headers: Record<string, string> = {}): Script =>
    (_options, h) => {
      h.onRequestStart?.(controller, {});
      h.onResponseStart?.(controller, status, headers, '');
      h.onResponseData?.(controller, Buffer.from(body));
      h.onResponseEnd?.(controller, {});
    };

  function scriptedClient(
    script: Script,
    options: Partial<KooDriveClientOptions> = {},
    changes: Parameters<typeof settingsSource>[1] = {},
  ) {
    const sent: Dispatcher.DispatchOptions[] = [];
    const dispatcher = {
      dispatch(o: Dispatcher.DispatchOptions, h: Dispatcher.DispatchHandler) {
        sent.push(o);
        script(o, h);
        return true;
      },
    } as unknown as Dispatcher;
    const client = new KooDriveClient({
      settings: settingsSource(ENDPOINT, changes),
      dispatcher,
      timeoutMs: 1000,
      ...options,
    });
    return { client, sent };
  }

  it('refuses a timeoutMs that is not a positive number', () => {
    for (const timeoutMs of [0, -1, Number.NaN]) {
      expect(() => new KooDriveClient({ settings: settingsSource(ENDPOINT), timeoutMs })).toThrow(
        `timeoutMs must be a positive number, got ${timeoutMs}`,
      );
    }
    expect(() => new KooDriveClient({ settings: settingsSource(ENDPOINT), timeoutMs: 1 })).not.toThrow();
  });

  it('back-dates X-Date by xDateBackdateMs, never into the future', async () => {
    const now = Date.UTC(2024, 8, 9, 3, 33, 26, 0);
    const xDate = async (xDateBackdateMs?: number) => {
      const { client, sent } = scriptedClient(answer(200, '{"code":0}'), {
        now: () => now,
        ...(xDateBackdateMs === undefined ? {} : { xDateBackdateMs }),
      });
      await client.releaseLock(LOCK);
      return (sent[0]?.headers as Record<string, string>)['x-date'];
    };
    expect(await xDate()).toBe('20240909T033325Z');
    expect(await xDate(3000)).toBe('20240909T033323Z');
    expect(await xDate(0)).toBe('20240909T033326Z');
    expect(await xDate(-5000)).toBe('20240909T033326Z');
  });

  it('passes Retry-After on, an HTTP-date measured from the client clock', async () => {
    const now = Date.UTC(2025, 10, 3, 7, 1, 40);
    const { client } = scriptedClient(
      answer(503, '{"msg":"busy"}', { 'retry-after': 'Mon, 03 Nov 2025 07:01:50 GMT' }),
      { now: () => now },
    );
    expect(await client.releaseLock(LOCK)).toMatchObject({ ok: false, retryAfterMs: 10_000 });
  });

  it('refuses credentials that would break the Authorization header, sending nothing', async () => {
    const { client, sent } = scriptedClient(
      answer(200, '{"code":0}'),
      {},
      {
        auth: { mode: 'token', accessToken: 'tok\r\nX-Evil: 1' },
      },
    );
    expect(await client.releaseLock(LOCK)).toEqual({
      ok: false,
      error: {
        kind: 'permanent',
        message: 'the credentials hold characters that are not allowed in an HTTP header',
      },
      credentialsVersion: CREDENTIALS_VERSION,
    });
    expect(sent).toHaveLength(0);
  });

  it('uses the token prefix of the protocol options', async () => {
    const { client, sent } = scriptedClient(
      answer(200, '{"code":0}'),
      {},
      {
        auth: { mode: 'token', accessToken: ACCESS_TOKEN },
        protocol: { tokenPrefix: 'Bearer+' },
      },
    );
    await client.releaseLock(LOCK);
    expect((sent[0]?.headers as Record<string, string>).authorization).toBe(`Bearer+${ACCESS_TOKEN}`);
  });

  it.each([
    ['UND_ERR_INVALID_ARG', 'permanent'],
    ['UND_ERR_SOCKET', 'retryable'],
  ])('a transport error %s is %s, with its code and a redacted message', async (code, kind) => {
    const { client } = scriptedClient((_o, h) => {
      h.onRequestStart?.(controller, {});
      h.onResponseError?.(
        controller,
        Object.assign(new Error(`failed with ${APP_SECRET}\r\nnext`), { code }),
      );
    });
    expect(await client.releaseLock(LOCK)).toEqual({
      ok: false,
      error: { kind, message: `request failed (${code}): failed with [redacted] next` },
      credentialsVersion: CREDENTIALS_VERSION,
    });
  });

  it('a transport error without a code is retryable as an unknown error', async () => {
    const { client } = scriptedClient((_o, h) => h.onResponseError?.(controller, new Error('gone')));
    expect(await client.releaseLock(LOCK)).toMatchObject({
      ok: false,
      error: { kind: 'retryable', message: 'request failed (unknown error): gone' },
    });
  });

  it('an answer that is not JSON is classified by its status alone', async () => {
    const { client } = scriptedClient(answer(200, 'OK'));
    expect(await client.releaseLock(LOCK)).toMatchObject({
      ok: false,
      error: {
        kind: 'permanent',
        message: 'unexpected answer: HTTP 200 without a KooDrive code',
        httpStatus: 200,
      },
    });
  });

  it('create: a "does not exist" answer is a permanent failure keeping the code', async () => {
    const { client } = scriptedClient(answer(400, '{"code":13000309,"msg":"resource does not exist"}'));
    expect(await client.createLock(LOCK.userId, '102')).toEqual({
      ok: false,
      error: {
        kind: 'permanent',
        httpStatus: 400,
        code: '13000309',
        message: 'create answered that the resource does not exist',
      },
      credentialsVersion: CREDENTIALS_VERSION,
    });
  });

  it('create: a lock ID that is not a valid ID is refused, naming the problem', async () => {
    for (const [data, problem] of [
      [{ lockId: 'has space' }, 'lockId may hold only printable ASCII characters (0x21-0x7E)'],
      [{ lockId: 7 }, 'lockId must be a string, got number'],
      [['x'], 'lockId must be a string, got undefined'],
    ] as const) {
      const { client } = scriptedClient(answer(200, JSON.stringify({ code: 0, data })));
      expect(await client.createLock(LOCK.userId, '102')).toEqual({
        ok: false,
        error: {
          kind: 'permanent',
          httpStatus: 200,
          message: `create succeeded but its answer has no usable lock ID: ${problem}`,
        },
        credentialsVersion: CREDENTIALS_VERSION,
      });
    }
  });

  it('renew: failures pass through, without a code when the answer has none', async () => {
    const { client } = scriptedClient(answer(503, 'busy'));
    expect(await client.renewLock(LOCK)).toEqual({
      ok: false,
      error: { kind: 'retryable', httpStatus: 503, message: 'server error (HTTP 503)' },
      credentialsVersion: CREDENTIALS_VERSION,
    });
  });

  it('each client checks its own endpoint, also when two alternate', async () => {
    const sentTo: string[] = [];
    const dispatcher = {
      dispatch(o: Dispatcher.DispatchOptions, h: Dispatcher.DispatchHandler) {
        sentTo.push(String(o.origin));
        answer(200, '{"code":0}')(o, h);
        return true;
      },
    } as unknown as Dispatcher;
    const good = new KooDriveClient({
      settings: settingsSource('https://a.example'),
      dispatcher,
      timeoutMs: 100,
    });
    const bad = new KooDriveClient({
      settings: settingsSource('http://b.example'),
      dispatcher,
      timeoutMs: 100,
    });
    const other = new KooDriveClient({
      settings: settingsSource('https://c.example:8443'),
      dispatcher,
      timeoutMs: 100,
    });
    expect((await good.releaseLock(LOCK)).ok).toBe(true);
    expect((await bad.releaseLock(LOCK)).ok).toBe(false);
    expect((await other.releaseLock(LOCK)).ok).toBe(true);
    expect((await good.releaseLock(LOCK)).ok).toBe(true);
    expect(sentTo).toEqual(['https://a.example', 'https://c.example:8443', 'https://a.example']);
  });

  it('refuses an endpoint with a query, a fragment or a password, and names an unsupported scheme', async () => {
    for (const [endpoint, message] of [
      ['https://kd.example/?a=1', 'must be an origin'],
      ['https://kd.example/#x', 'must be an origin'],
      ['https://:pw@kd.example', 'must be an origin'],
      ['ws://kd.example', 'unsupported endpoint scheme ws:'],
      ['ws://127.0.0.1', 'unsupported endpoint scheme ws:'],
      ['http://10.0.0.1', 'refusing plain http:// to the non-loopback host 10.0.0.1'],
      ['::', 'the KooDrive endpoint is not a valid URL'],
    ] as const) {
      const dispatcher = newAgent();
      const outcome = await new KooDriveClient({
        settings: settingsSource(endpoint),
        dispatcher,
        timeoutMs: 100,
      }).releaseLock(LOCK);
      expect(outcome, endpoint).toMatchObject({ ok: false, error: { kind: 'permanent' } });
      if (!outcome.ok) expect(outcome.error.message, endpoint).toContain(message);
      expect(dispatcher.dispatched, endpoint).toBe(0);
    }
  });
});
