import { createHash, createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { Client } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import {
  canonicalRequest,
  checkXDate,
  expectedSignature,
  LOCK_HELD_CODE,
  parseXDate,
  startKooDriveEmulator,
  verifyAppSignature,
} from '../../src/testing/koodrive-emulator';
import type { EmulatorOptions, KooDriveEmulator, SignableRequest } from '../../src/testing/koodrive-emulator';

// ---------------------------------------------------------------------------------------------------------
// A small signer written from the documented KooDrive signing algorithm, independent of the emulator's verifier.

const PATH = '/koodrive/ose/v1/backup/lock';
const sha256 = (data: string): string => createHash('sha256').update(data).digest('hex');

function sign(
  appId: string,
  appSecret: string,
  method: string,
  headers: Record<string, string>,
  body = '',
  dateLine = false,
): string {
  const names = Object.keys(headers).sort();
  const canonical = [
    method,
    `${PATH}/`,
    '',
    names.map((name) => `${name}:${headers[name]!.trim()}\n`).join(''),
    names.join(';'),
    sha256(body),
  ].join('\n');
  const toSign = ['HMAC-SHA256', ...(dateLine ? [headers['x-date']!] : []), sha256(canonical)].join('\n');
  const signature = createHmac('sha256', appSecret).update(toSign).digest('hex');
  return `HMAC-SHA256 AppId=${appId},SignedHeaders=${names.join(';')},Signature=${signature}`;
}

const xDate = (ms: number): string =>
  new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');

// ---------------------------------------------------------------------------------------------------------
// Known-answer vectors (the documented KooDrive signing algorithm).

const VECTOR_SECRET = 'example-app-secret-not-real';
const vectorRequest = (method: string, body?: string): SignableRequest => ({
  method,
  path: PATH,
  headers: {
    host: 'intl.myhuaweicloud-koodrive.com',
    'x-date': '20240909T033325Z',
    'x-user-id': '1505084218764547200',
  },
  body,
});
const SIGNED = ['host', 'x-date', 'x-user-id'];
const RELEASE_SIGNATURE = '3ed3c2eb2125a424fa1c3f237e22cdea4a2d8a3409ba10e2c58ee8072fa9540d';
const CREATE_SIGNATURE = 'f9f58594a451c13f35c273c38b6b008a136cfb6cc94bacbb16103e388aa128cc';

describe('signature verifier (pure)', () => {
  it('reproduces the KooDrive release known-answer vector', () => {
    const req = vectorRequest('DELETE');
    expect(sha256(canonicalRequest(req, SIGNED))).toBe(
      '2e6051a30a089ea80b36c4b5b9564597af9dc755746a9aa506b81eb59af6d141',
    );
    expect(expectedSignature(VECTOR_SECRET, req, SIGNED)).toBe(RELEASE_SIGNATURE);
    const auth = `HMAC-SHA256 AppId=app,SignedHeaders=host;x-date;x-user-id,Signature=${RELEASE_SIGNATURE}`;
    expect(verifyAppSignature(auth, req, { apps: { app: VECTOR_SECRET } })).toEqual({
      ok: true,
      appId: 'app',
    });
  });

  it('reproduces the KooDrive create known-answer vector', () => {
    const body = '{"moduleCode":"102"}';
    expect(sha256(body)).toBe('134be0b02487a71a3500523797fd6c313cf893d7a8714c0eb362f6e3dc0defc0');
    const req = vectorRequest('POST', body);
    expect(expectedSignature(VECTOR_SECRET, req, SIGNED)).toBe(CREATE_SIGNATURE);
    const auth = `HMAC-SHA256 AppId=app,SignedHeaders=host;x-date;x-user-id,Signature=${CREATE_SIGNATURE}`;
    expect(verifyAppSignature(auth, req, { apps: { app: VECTOR_SECRET } }).ok).toBe(true);
  });

  it('the test signer agrees with the vectors too', () => {
    const headers = vectorRequest('DELETE').headers as Record<string, string>;
    expect(sign('app', VECTOR_SECRET, 'DELETE', headers)).toContain(`Signature=${RELEASE_SIGNATURE}`);
    expect(sign('app', VECTOR_SECRET, 'POST', headers, '{"moduleCode":"102"}')).toContain(CREATE_SIGNATURE);
  });

  it("reproduces Huawei's API Gateway canonical request (segment encoding, sorted query)", () => {
    const req: SignableRequest = {
      method: 'GET',
      path: '/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs',
      query: 'limit=2&marker=13551d6b-755d-4757-b956-536f674975c0',
      headers: {
        'content-type': 'application/json',
        host: 'service.region.example.com',
        'x-sdk-date': '20191115T033655Z',
      },
    };
    const canonical = canonicalRequest(req, ['content-type', 'host', 'x-sdk-date']);
    expect(sha256(canonical)).toBe('b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a');
  });

  it('rejects tampering and malformed headers with a reason that never holds the secret', () => {
    const req = vectorRequest('DELETE');
    const apps = { app: VECTOR_SECRET };
    const good = `HMAC-SHA256 AppId=app,SignedHeaders=host;x-date;x-user-id,Signature=${RELEASE_SIGNATURE}`;
    const cases: [string, SignableRequest, string][] = [
      [good, { ...req, method: 'POST' }, 'signature mismatch'],
      [good, { ...req, headers: { ...req.headers, 'x-user-id': '1' } }, 'signature mismatch'],
      [good.replace('AppId=app', 'AppId=other'), req, 'unknown AppId'],
      [good.replace('AppId=app', 'AppId=constructor'), req, 'unknown AppId'],
      [good.replace(',SignedHeaders', ', SignedHeaders'), req, 'malformed Authorization header'],
      [good.replace('host;x-date;x-user-id', 'host;x-date'), req, 'SignedHeaders lacks x-user-id'],
      [good.replace('host;x-date;x-user-id', 'x-date;host;x-user-id'), req, 'sorted'],
      [good.replace('host;x-date;x-user-id', 'host;x-date;x-other;x-user-id'), req, 'x-other is missing'],
      [good.replace(RELEASE_SIGNATURE, RELEASE_SIGNATURE.toUpperCase()), req, 'hex'],
    ];
    for (const [auth, request, reason] of cases) {
      const result = verifyAppSignature(auth, request, { apps });
      expect(result.ok).toBe(false);
      expect(JSON.stringify(result)).toContain(reason);
      expect(JSON.stringify(result)).not.toContain(VECTOR_SECRET);
    }
  });

  it('honours the date-line and required-header options', () => {
    const req = vectorRequest('DELETE');
    const withDate = expectedSignature(VECTOR_SECRET, req, SIGNED, { dateLineInStringToSign: true });
    expect(withDate).not.toBe(RELEASE_SIGNATURE);
    const auth = `HMAC-SHA256 AppId=app,SignedHeaders=host;x-date;x-user-id,Signature=${withDate}`;
    expect(
      verifyAppSignature(auth, req, { apps: { app: VECTOR_SECRET }, dateLineInStringToSign: true }).ok,
    ).toBe(true);
    expect(
      verifyAppSignature(auth, req, {
        apps: { app: VECTOR_SECRET },
        dateLineInStringToSign: true,
        requiredSignedHeaders: [...SIGNED, 'x-backup-lock-id'],
      }),
    ).toEqual({ ok: false, reason: 'SignedHeaders lacks x-backup-lock-id' });
  });

  it('parses and windows X-Date strictly', () => {
    const at = Date.UTC(2024, 8, 9, 3, 33, 25);
    expect(parseXDate('20240909T033325Z')).toBe(at);
    for (const bad of ['2024-09-09T03:33:25Z', '20240909T033325', '20240230T000000Z', '20241309T000000Z']) {
      expect(parseXDate(bad)).toBeUndefined();
    }
    expect(checkXDate('20240909T033325Z', at, 900_000)).toBeUndefined();
    expect(checkXDate('20240909T033325Z', at - 1, 900_000)).toBe('X-Date is later than now');
    expect(checkXDate('20240909T033325Z', at + 900_000, 900_000)).toBeUndefined();
    expect(checkXDate('20240909T033325Z', at + 900_001, 900_000)).toMatch(/window/);
    expect(checkXDate(undefined, at, 900_000)).toBe('X-Date is missing');
  });
});

// ---------------------------------------------------------------------------------------------------------
// Over HTTP.

const APP_ID = 'app-1';
const APP_SECRET = 'app-secret-1';
const USER = '1505084218764547200';

interface ApiBody {
  code?: number;
  msg?: string;
  data?: { lockId: string };
  error_code?: string;
  error_msg?: string;
  request_id?: string;
}

interface Answer {
  status: number;
  body: ApiBody;
  text: string;
  headers: IncomingHttpHeaders;
}

interface CallOptions {
  userId?: string | null;
  lockId?: string;
  body?: string;
  xDate?: string;
  secret?: string;
  appId?: string;
  signedHost?: string;
  authorization?: string;
  dateLine?: boolean;
  signLockId?: boolean;
  path?: string;
}

describe('KooDrive emulator over HTTP', () => {
  let clock = Date.UTC(2024, 8, 9, 3, 33, 25, 500);
  let emulator: KooDriveEmulator;
  let client: Client;

  async function start(options: EmulatorOptions = {}): Promise<KooDriveEmulator> {
    clock = Date.UTC(2024, 8, 9, 3, 33, 25, 500);
    emulator = await startKooDriveEmulator({ apps: { [APP_ID]: APP_SECRET }, now: () => clock, ...options });
    client = new Client(emulator.url);
    return emulator;
  }

  afterEach(async () => {
    await client?.close();
    await emulator?.close();
  });

  function headersFor(method: string, o: CallOptions): Record<string, string> {
    const host = new URL(emulator.url).host;
    const signedPart: Record<string, string> = {
      host: o.signedHost ?? host,
      'x-date': o.xDate ?? xDate(clock - 1000),
    };
    if (o.userId !== null) signedPart['x-user-id'] = o.userId ?? USER;
    if (o.lockId !== undefined && o.signLockId) signedPart['x-backup-lock-id'] = o.lockId;
    const authorization =
      o.authorization ??
      sign(o.appId ?? APP_ID, o.secret ?? APP_SECRET, method, signedPart, o.body, o.dateLine);
    const headers: Record<string, string> = { ...signedPart, host, authorization };
    if (o.lockId !== undefined) headers['x-backup-lock-id'] = o.lockId;
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    return headers;
  }

  async function call(method: string, o: CallOptions = {}): Promise<Answer> {
    const res = await client.request({
      method,
      path: o.path ?? PATH,
      headers: headersFor(method, o),
      body: o.body,
    });
    const text = await res.body.text();
    const body = (text.startsWith('{') ? JSON.parse(text) : {}) as ApiBody;
    return { status: res.statusCode, body, text, headers: res.headers };
  }

  const create = (moduleCode = '102', o: CallOptions = {}) =>
    call('POST', { ...o, body: JSON.stringify({ moduleCode }) });

  it('creates, renews and releases a lock', async () => {
    await start();
    const created = await create('101');
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ code: 0, msg: 'success' });
    const lockId = created.body.data?.lockId ?? '';
    expect(lockId).toMatch(/^[0-9a-f-]{36}@101$/);
    expect(emulator.lock(lockId)).toEqual({
      lockId,
      userId: USER,
      moduleCode: '101',
      createdAt: clock,
      expiresAt: clock + 600_000,
    });

    clock += 300_000;
    expect(await call('PATCH', { lockId })).toEqual(
      expect.objectContaining({ status: 200, body: { code: 0, msg: 'success' } }),
    );
    expect(emulator.lock(lockId)?.expiresAt).toBe(clock + 600_000);

    expect((await call('DELETE', { lockId })).body).toEqual({ code: 0, msg: 'success' });
    expect(emulator.isHeld(lockId)).toBe(false);
    expect(emulator.lock(lockId)?.releasedAt).toBe(clock);
    expect(emulator.requests.map((r) => [r.method, r.status, r.authOk])).toEqual([
      ['POST', 200, true],
      ['PATCH', 200, true],
      ['DELETE', 200, true],
    ]);
    expect(emulator.requests[2]).toMatchObject({ lockId, userId: USER, at: clock });
  });

  it('answers 13000309 for a second release, a released or unknown lock and another user', async () => {
    await start();
    const lockId = emulator.seedLock(USER);
    const notFound = { status: 400, body: { code: 13000309, msg: 'resource does not exist' } };
    expect((await call('DELETE', { lockId, userId: 'someone-else' })).body).toEqual(notFound.body);
    expect(emulator.isHeld(lockId)).toBe(true);
    expect((await call('DELETE', { lockId })).status).toBe(200);
    expect(await call('DELETE', { lockId })).toMatchObject(notFound);
    expect(await call('PATCH', { lockId })).toMatchObject(notFound);
    expect(await call('DELETE', { lockId: 'no-such-lock@102' })).toMatchObject(notFound);
  });

  it('treats an expired lock as gone for release but renewable (from now)', async () => {
    await start({ notFoundCode: 13000999 });
    const expiring = emulator.seedLock(USER, '100');
    const renewable = emulator.seedLock(USER, '101', { expiresAt: clock + 1000 });
    clock += 600_000;
    expect(emulator.isHeld(expiring)).toBe(false);
    expect(await call('DELETE', { lockId: expiring })).toMatchObject({
      status: 400,
      body: { code: 13000999 },
    });
    expect((await call('PATCH', { lockId: renewable })).status).toBe(200);
    expect(emulator.lock(renewable)?.expiresAt).toBe(clock + 600_000);
    expect(emulator.isHeld(renewable)).toBe(true);
  });

  it('refuses a second lock for the same user and module, and bad module codes', async () => {
    await start({ lockTtlMs: 10_000 });
    expect((await create('102')).status).toBe(200);
    expect(await create('102')).toMatchObject({ status: 400, body: { code: LOCK_HELD_CODE } });
    expect((await create('102', { userId: 'other-user' })).status).toBe(200);
    expect((await create('100')).status).toBe(200);
    for (const body of ['{"moduleCode":"103"}', '{"moduleCode":102}', '{}', 'null', 'not json']) {
      expect(await call('POST', { body })).toMatchObject({ status: 400, body: { code: 13000102 } });
    }
    clock += 10_000;
    expect((await create('102')).status).toBe(200);
  });

  it('requires X-User-Id and x-backup-lock-id (13000102)', async () => {
    await start();
    expect(await call('DELETE', { lockId: 'x', userId: null })).toMatchObject({
      status: 400,
      body: { code: 13000102 },
    });
    expect(await call('DELETE')).toMatchObject({ status: 400, body: { code: 13000102 } });
  });

  it('rejects bad app authentication like the API gateway (401 APIGW.0301)', async () => {
    await start();
    const lockId = emulator.seedLock(USER);
    const rejected = async (o: CallOptions, reason: RegExp): Promise<void> => {
      const res = await call('DELETE', { lockId, ...o });
      expect(res.status).toBe(401);
      expect(Object.keys(res.body).sort()).toEqual(['error_code', 'error_msg', 'request_id']);
      expect(res.body.error_code).toBe('APIGW.0301');
      expect(res.body.error_msg).toMatch(/^Incorrect app authentication information: /);
      expect(res.body.request_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(res.body.error_msg).toMatch(reason);
      expect(JSON.stringify(res.body)).not.toContain(APP_SECRET);
    };
    await rejected({ secret: 'wrong-secret' }, /signature mismatch/);
    await rejected({ appId: 'unknown-app' }, /unknown AppId/);
    await rejected({ xDate: xDate(clock + 1000) }, /later than now/);
    await rejected({ xDate: xDate(clock - 15 * 60_000 - 1000) }, /window/);
    await rejected({ xDate: '2024-09-09T03:33:25Z' }, /yyyyMMddTHHmmssZ/);
    await rejected({ signedHost: 'intl.myhuaweicloud-koodrive.com' }, /signature mismatch/);
    await rejected({ authorization: 'Basic dXNlcjpwYXNz' }, /unsupported/);
    await rejected({ dateLine: true }, /signature mismatch/);
    expect(emulator.isHeld(lockId)).toBe(true);
    expect(emulator.requests.every((r) => r.status === 401 && !r.authOk)).toBe(true);

    // A body other than the signed one is refused too.
    const signedPart = { host: new URL(emulator.url).host, 'x-date': xDate(clock - 1000), 'x-user-id': USER };
    const authorization = sign(APP_ID, APP_SECRET, 'POST', signedPart, '{"moduleCode":"100"}');
    expect((await call('POST', { body: '{"moduleCode":"100"}', authorization })).status).toBe(200);
    const tampered = await call('POST', { body: '{"moduleCode":"101"}', authorization });
    expect(tampered.status).toBe(401);
    expect(tampered.body.error_msg).toMatch(/signature mismatch/);
  });

  it('accepts the oldest X-Date the window allows and the current second', async () => {
    await start();
    clock -= 500; // on a whole second: X-Date has no milliseconds
    expect((await create('100', { xDate: xDate(clock) })).status).toBe(200);
    expect((await create('101', { xDate: xDate(clock - 15 * 60_000) })).status).toBe(200);
  });

  it('honours the signing options and credential rotation', async () => {
    await start({
      dateLineInStringToSign: true,
      requiredSignedHeaders: ['host', 'x-date', 'x-user-id', 'x-backup-lock-id'],
    });
    const lockId = emulator.seedLock(USER);
    expect((await call('DELETE', { lockId, dateLine: true })).body.error_msg).toMatch(
      /lacks x-backup-lock-id/,
    );
    expect((await call('DELETE', { lockId, signLockId: true })).body.error_msg).toMatch(/signature mismatch/);
    expect((await call('DELETE', { lockId, dateLine: true, signLockId: true })).status).toBe(200);

    const other = emulator.seedLock(USER, '100');
    emulator.setApps({ [APP_ID]: 'rotated-secret' });
    const old = await call('PATCH', { lockId: other, dateLine: true, signLockId: true });
    expect(old.status).toBe(401);
    const rotated = await call('PATCH', {
      lockId: other,
      dateLine: true,
      signLockId: true,
      secret: 'rotated-secret',
    });
    expect(rotated.status).toBe(200);
  });

  it('accepts access tokens in token mode', async () => {
    await start({ tokens: ['tok-1'] });
    const lockId = emulator.seedLock(USER);
    expect((await call('PATCH', { lockId, authorization: 'Bearer tok-2' })).status).toBe(401);
    expect(
      (await call('PATCH', { lockId, authorization: 'Bearer tok-1', xDate: xDate(clock + 5000) })).status,
    ).toBe(401);
    expect((await call('DELETE', { lockId, authorization: 'Bearer tok-1' })).status).toBe(200);
    expect(emulator.requests.map((r) => r.authOk)).toEqual([false, false, true]);
  });

  it('supports another token prefix', async () => {
    await start({ tokens: ['tok-1'], tokenPrefix: 'Bearer+' });
    const lockId = emulator.seedLock(USER);
    expect((await call('DELETE', { lockId, authorization: 'Bearer tok-1' })).status).toBe(401);
    expect((await call('DELETE', { lockId, authorization: 'Bearer+tok-1' })).status).toBe(200);
  });

  it('answers 404 JSON for other paths and methods', async () => {
    await start();
    for (const [method, path] of [
      ['GET', PATH],
      ['PUT', PATH],
      ['DELETE', `${PATH}/`],
      ['DELETE', `${PATH}?x=1`],
      ['POST', '/other'],
    ] as const) {
      expect(await call(method, { path, lockId: 'x' })).toMatchObject({
        status: 404,
        body: { error_code: 'APIGW.0101' },
      });
    }
  });

  describe('faults', () => {
    it('status: answers the status, body and Retry-After given, then handles normally', async () => {
      await start();
      const lockId = emulator.seedLock(USER);
      emulator.fault({ times: 1, action: { type: 'status', status: 503, retryAfter: '2' } });
      emulator.fault({ times: 1, action: { type: 'status', status: 502, body: '<html>bad gateway</html>' } });
      const first = await call('DELETE', { lockId });
      expect(first).toMatchObject({ status: 503, body: { error_code: 'EMULATOR.FAULT' } });
      expect(first.headers['retry-after']).toBe('2');
      const second = await call('DELETE', { lockId });
      expect(second).toMatchObject({ status: 502, text: '<html>bad gateway</html>' });
      expect(second.headers['content-type']).toMatch(/^text\/plain/);
      expect(emulator.isHeld(lockId)).toBe(true);
      expect((await call('DELETE', { lockId })).status).toBe(200);
      expect(emulator.requests.map((r) => r.fault)).toEqual(['status', 'status', undefined]);
    });

    it('throttle: 429 APIGW.0308 with Retry-After', async () => {
      await start();
      emulator.fault({ action: { type: 'throttle', retryAfterSeconds: 3 } });
      const res = await call('DELETE', { lockId: emulator.seedLock(USER) });
      expect(res.status).toBe(429);
      expect(res.headers['retry-after']).toBe('3');
      expect(res.body.error_code).toBe('APIGW.0308');
      expect(res.body.request_id).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('internal: 400 code 13000201 and the lock stays held', async () => {
      await start();
      const lockId = emulator.seedLock(USER);
      emulator.fault({ times: 2, action: { type: 'internal' } });
      expect(await call('DELETE', { lockId })).toMatchObject({ status: 400, body: { code: 13000201 } });
      expect((await call('DELETE', { lockId })).body.code).toBe(13000201);
      expect(emulator.isHeld(lockId)).toBe(true);
      expect((await call('DELETE', { lockId })).status).toBe(200);
    });

    it('drop: destroys the connection without answering and releases nothing', async () => {
      await start();
      const lockId = emulator.seedLock(USER);
      emulator.fault({ times: 1, match: (r) => r.lockId === lockId, action: { type: 'drop' } });
      await expect(call('DELETE', { lockId })).rejects.toThrow();
      expect(emulator.isHeld(lockId)).toBe(true);
      expect(emulator.requests).toEqual([
        expect.objectContaining({ method: 'DELETE', lockId, status: 0, fault: 'drop', authOk: false }),
      ]);
      expect((await call('DELETE', { lockId })).status).toBe(200);
    });

    it('latency: delays, then takes effect — even when the client gave up', async () => {
      await start();
      const lockId = emulator.seedLock(USER);
      emulator.fault({ times: 1, action: { type: 'latency', ms: 150 } });
      const abort = new AbortController();
      setTimeout(() => abort.abort(), 30);
      const started = performance.now();
      await expect(
        client.request({
          method: 'DELETE',
          path: PATH,
          headers: headersFor('DELETE', { lockId }),
          signal: abort.signal,
        }),
      ).rejects.toThrow();
      expect(emulator.isHeld(lockId)).toBe(true);
      await expect.poll(() => emulator.isHeld(lockId), { timeout: 2000 }).toBe(false);
      expect(performance.now() - started).toBeGreaterThanOrEqual(140);
      expect(emulator.requests).toEqual([
        expect.objectContaining({ status: 200, fault: 'latency', authOk: true }),
      ]);
    });

    it('match, times, the fault policy and clearFaults', async () => {
      await start();
      const a = emulator.seedLock(USER, '100');
      const b = emulator.seedLock(USER, '101');
      emulator.fault({ match: (r) => r.lockId === a, times: 2, action: { type: 'internal' } });
      emulator.setFaultPolicy((r) => (r.method === 'PATCH' ? { type: 'status', status: 500 } : undefined));
      expect((await call('DELETE', { lockId: b })).status).toBe(200);
      expect((await call('DELETE', { lockId: a })).body.code).toBe(13000201);
      expect((await call('PATCH', { lockId: a })).body.code).toBe(13000201);
      expect((await call('PATCH', { lockId: a })).status).toBe(500);
      emulator.clearFaults();
      expect((await call('PATCH', { lockId: a })).status).toBe(200);
      expect(() => emulator.fault({ times: 0, action: { type: 'drop' } })).toThrow(RangeError);
    });

    it('global latency applies to every request', async () => {
      await start();
      emulator.setLatency(40);
      const started = performance.now();
      await Promise.all([create('100'), create('101'), create('102')]);
      const elapsed = performance.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(38);
      expect(elapsed).toBeLessThan(1000);
    });
  });

  it('keeps connections alive and counts them', async () => {
    await start();
    for (let i = 0; i < 5; i += 1) await call('DELETE', { lockId: `x${i}` });
    expect(emulator.connectionsOpened).toBe(1);
    const second = new Client(emulator.url);
    try {
      await second.request({ method: 'GET', path: '/' }).then((r) => r.body.dump());
    } finally {
      await second.close();
    }
    expect(emulator.connectionsOpened).toBe(2);
    emulator.reset();
    expect(emulator.connectionsOpened).toBe(0);
    expect(emulator.requests).toEqual([]);
  });

  it('handles thousands of requests quickly', async () => {
    await start();
    const started = performance.now();
    const statuses: number[] = [];
    for (let batch = 0; batch < 20; batch += 1) {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => {
          const userId = `u${batch}-${i}`;
          return call('DELETE', { userId, lockId: emulator.seedLock(userId) });
        }),
      );
      statuses.push(...results.map((r) => r.status));
    }
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(emulator.requests).toHaveLength(1000);
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('close() ends idle keep-alive sockets and pending delays, and stops listening', async () => {
    await start();
    await create();
    emulator.setLatency(60_000);
    const pending = create('100').catch((e: unknown) => e);
    await expect.poll(() => emulator.connectionsOpened).toBeGreaterThanOrEqual(1);
    const started = performance.now();
    await emulator.close();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(await pending).toBeInstanceOf(Error);
    await emulator.close(); // idempotent
    const port = Number(new URL(emulator.url).port);
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  });
});
