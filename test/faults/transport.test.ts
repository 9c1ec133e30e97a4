/**
 * Transport rules, checked against real local servers with the production client and its default dispatcher:
 * https:// required for every endpoint that is not loopback (in the secret's parsing and in the client),
 * certificate checks never disabled, redirects never followed, response bodies size-capped.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, type Dispatcher } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isAllowedEndpoint } from '../../src/koodrive/endpoint';
import { parseSecret } from '../../src/koodrive/secret';
import { isLoopbackHost, KooDriveClient, LOCK_PATH } from '../../src/koodrive/client';
import { DEFAULT_PROTOCOL, type KooDriveSettings } from '../../src/koodrive/settings';

const LOCK = { lockId: '78e41c7e-db02-4d55-85b3-8153e4fefd2e@102', userId: '1505084218764547200' };
const ROOT = join(import.meta.dirname, '..', '..');

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
});

async function listen(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return String((server.address() as AddressInfo).port);
}

/** A plain HTTP server on 127.0.0.1 that records the paths it was asked for. */
async function httpServer(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ url: string; hits: string[] }> {
  const hits: string[] = [];
  const port = await listen(
    createHttpServer((req, res) => {
      hits.push(`${req.method} ${req.url}`);
      handle(req, res);
    }),
  );
  return { url: `http://127.0.0.1:${port}`, hits };
}

function settingsFor(endpoint: string): KooDriveSettings {
  return {
    endpoint,
    auth: { mode: 'app', appId: 'app', appSecret: 'transport-secret' },
    protocol: DEFAULT_PROTOCOL,
  };
}

/** The production client; the default dispatcher (the process-wide undici Agent) unless one is given. */
function client(endpoint: string, options: { dispatcher?: Dispatcher; timeoutMs?: number } = {}) {
  return new KooDriveClient({
    settings: { current: () => Promise.resolve({ settings: settingsFor(endpoint), version: 1 }) },
    timeoutMs: options.timeoutMs ?? 2000,
    ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
  });
}

/** A dispatcher that counts what it is asked to send (and sends it). */
class CountingAgent extends Agent {
  sent = 0;
  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    this.sent += 1;
    return super.dispatch(options, handler);
  }
}

describe('https:// for every endpoint that is not loopback', () => {
  const app = { appId: 'a', appSecret: 'transport-secret' };
  it.each([
    'https://intl.myhuaweicloud-koodrive.com',
    'https://cn.myhuaweicloud-koodrive.com:8443',
    'https://203.0.113.7',
    'http://127.0.0.1:9000',
    'http://127.1.2.3',
    'http://localhost:8080',
    'http://LOCALHOST',
    'http://[::1]:8080',
  ])('accepts %s', (endpoint) => {
    expect(parseSecret(JSON.stringify({ endpoint, ...app }), 's').endpoint).toBe(new URL(endpoint).origin);
  });

  it.each([
    'http://intl.myhuaweicloud-koodrive.com',
    'HTTP://INTL.MYHUAWEICLOUD-KOODRIVE.COM',
    'http://203.0.113.7',
    'http://10.0.0.1',
    'http://0.0.0.0',
    'http://localhost.example.com',
    'http://127.0.0.1.nip.io',
    'http://[::ffff:7f00:1]',
    'http://[::]',
    'ftp://intl.myhuaweicloud-koodrive.com',
    'ws://127.0.0.1',
    'file:///etc/passwd',
    'intl.myhuaweicloud-koodrive.com',
  ])('refuses %s in the secret, naming the rule and not the value', (endpoint) => {
    const parse = () => parseSecret(JSON.stringify({ endpoint, ...app }), 's');
    expect(parse).toThrow(/endpoint (must be https|is not a URL)/);
    expect(parse).not.toThrow(/transport-secret/);
  });

  it('the client and the secret parser agree on what loopback is', () => {
    for (const host of ['127.0.0.1', '127.255.0.9', 'localhost', '[::1]']) {
      expect(isLoopbackHost(host), host).toBe(true);
      expect(isAllowedEndpoint(new URL(`http://${host}`)), host).toBe(true);
    }
    for (const host of ['10.0.0.1', '0.0.0.0', 'localhost.example.com', '[::ffff:7f00:1]', 'example.com']) {
      expect(isLoopbackHost(new URL(`http://${host}`).hostname), host).toBe(false);
      expect(isAllowedEndpoint(new URL(`http://${host}`)), host).toBe(false);
    }
  });

  it.each(['http://koodrive.example.com', 'http://203.0.113.7:80', 'ftp://koodrive.example.com'])(
    'the client refuses %s on its own (settings that bypassed the parser) without sending anything',
    async (endpoint) => {
      const agent = new CountingAgent();
      try {
        const outcome = await client(endpoint, { dispatcher: agent }).releaseLock(LOCK);
        expect(outcome).toMatchObject({
          ok: false,
          error: { kind: 'permanent', message: expect.stringMatching(/https:\/\//) as unknown },
        });
        expect(agent.sent).toBe(0);
      } finally {
        await agent.close();
      }
    },
  );
});

describe('certificate checks are never disabled', () => {
  /** Every file under src/, and the deployed configuration. */
  function sources(): { file: string; text: string }[] {
    const walk = (dir: string): string[] =>
      readdirSync(dir).flatMap((name) => {
        const path = join(dir, name);
        return statSync(path).isDirectory() ? walk(path) : [path];
      });
    return [...walk(join(ROOT, 'src')), join(ROOT, 'serverless.yml')].map((file) => ({
      file,
      text: readFileSync(file, 'utf8'),
    }));
  }

  it('no source turns verification off', () => {
    const forbidden = [
      /rejectUnauthorized\s*:\s*false/,
      /NODE_TLS_REJECT_UNAUTHORIZED/,
      /checkServerIdentity/,
      /NODE_EXTRA_CA_CERTS/,
      /secureProtocol|minVersion\s*:\s*['"]TLSv1(\.1)?['"]/,
    ];
    const found = sources().flatMap(({ file, text }) =>
      forbidden.filter((pattern) => pattern.test(text)).map((pattern) => `${file}: ${pattern}`),
    );
    expect(found).toEqual([]);
  });

  const openssl = (() => {
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  describe.skipIf(!openssl)('against an https server with a self-signed certificate (openssl)', () => {
    let dir: string;
    let key: Buffer;
    let cert: Buffer;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'koodrive-tls-'));
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
          '-days',
          '1',
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
        ],
        { stdio: 'ignore' },
      );
      key = readFileSync(join(dir, 'key.pem'));
      cert = readFileSync(join(dir, 'cert.pem'));
    });
    afterAll(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    async function tlsServer(): Promise<{ url: string; hits: string[] }> {
      const hits: string[] = [];
      const port = await listen(
        createHttpsServer({ key, cert }, (req, res) => {
          hits.push(`${req.method} ${req.url}`);
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"code":0,"msg":"success"}');
        }),
      );
      return { url: `https://127.0.0.1:${port}`, hits };
    }

    it('the production client (default dispatcher) refuses the untrusted certificate and sends nothing', async () => {
      const server = await tlsServer();
      const outcome = await client(server.url).releaseLock(LOCK);
      expect(outcome.ok).toBe(false);
      if (outcome.ok) return;
      expect(outcome.error.message).toMatch(/SELF_SIGNED|self[- ]signed|certificate/i);
      expect(server.hits).toEqual([]);
    });

    it('control: the same server is reached once its certificate is trusted, so only verification stopped it', async () => {
      const server = await tlsServer();
      const trusting = new Agent({ connect: { ca: cert } });
      try {
        expect(await client(server.url, { dispatcher: trusting }).releaseLock(LOCK)).toEqual({
          ok: true,
          outcome: 'released',
        });
        expect(server.hits).toEqual([`DELETE ${LOCK_PATH}`]);
      } finally {
        await trusting.close();
      }
    });
  });
});

describe('redirects are never followed', () => {
  it.each([301, 302, 303, 307, 308])(
    'HTTP %i to another server: permanent, the target never asked',
    async (status) => {
      const target = await httpServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"code":0}');
      });
      const source = await httpServer((_req, res) => {
        res.writeHead(status, { location: `${target.url}${LOCK_PATH}` });
        res.end();
      });
      const outcome = await client(source.url).releaseLock(LOCK);
      expect(outcome).toMatchObject({
        ok: false,
        error: { kind: 'permanent', httpStatus: status, message: `redirect (HTTP ${status}) not followed` },
      });
      expect(source.hits).toEqual([`DELETE ${LOCK_PATH}`]);
      expect(target.hits).toEqual([]);
    },
  );
});

describe('response bodies are size-capped', () => {
  it('an endless body is cut at 64 KiB: the attempt ends at once, not at the timeout, and the socket is closed', async () => {
    let written = 0;
    let closed = false;
    const server = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"code":0,"msg":"');
      const chunk = 'x'.repeat(16 * 1024);
      const pump = () => {
        while (!res.destroyed && written < 512 * 1024 * 1024 && res.write(chunk)) written += chunk.length;
        if (!res.destroyed) res.once('drain', pump);
      };
      res.on('close', () => {
        closed = true;
      });
      pump();
    });
    const started = Date.now();
    const outcome = await client(server.url, { timeoutMs: 10_000 }).releaseLock(LOCK);
    const tookMs = Date.now() - started;
    expect(outcome).toMatchObject({ ok: false, error: { kind: 'permanent', httpStatus: 200 } });
    if (outcome.ok) return;
    expect(outcome.error.message).toContain('response body over 65536 bytes');
    expect(tookMs).toBeLessThan(3000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(closed, 'the client closed the connection instead of draining the body').toBe(true);
    // What the server managed to write before the close: the cap plus socket buffers, nowhere near 512 MiB.
    expect(written).toBeLessThan(16 * 1024 * 1024);
  });

  it('a 5xx with a huge body is still classified (retryable) from its status', async () => {
    const server = await httpServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/html' });
      res.end(`<html>${'y'.repeat(300_000)}</html>`);
    });
    const outcome = await client(server.url).releaseLock(LOCK);
    expect(outcome).toMatchObject({ ok: false, error: { kind: 'retryable', httpStatus: 503 } });
  });

  it('a long KooDrive message is clipped to 200 characters in the result', async () => {
    const server = await httpServer((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 13000102, msg: `bad ${'z'.repeat(10_000)}\r\nX-Injected: 1` }));
    });
    const outcome = await client(server.url).releaseLock(LOCK);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error.message.length).toBeLessThanOrEqual(200);
    expect(outcome.error.message).not.toMatch(/[\r\n]/);
  });
});
