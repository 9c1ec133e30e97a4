#!/usr/bin/env node
/**
 * `npx koodrive-emulator`: the KooDrive backup-lock emulator on its own, for workers in any language. It prints
 * one JSON line (its URL, the credentials it accepts, the KooDrive settings to give a worker, and the URL of a
 * small control API for scripted failures) and runs until SIGINT or SIGTERM.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { faultRuleOf, operationOf, type KooDriveFailure, type KooDriveFailureKind } from './faults';
import { startKooDriveEmulator } from './koodrive-emulator';
import { closerOf, listenOnLoopback, readBody } from './loopback';

const USAGE = `Usage: koodrive-emulator [options]

The KooDrive backup-lock API (POST, PATCH, DELETE /koodrive/ose/v1/backup/lock) on 127.0.0.1, with its
authentication checks, the 10-minute expiry and one lock per user and module. Prints one JSON line:
{"url", "appId", "appSecret", "settings", "control"} and runs until SIGINT or SIGTERM.

Options:
  --port <n>             port on 127.0.0.1 (default: a free one)
  --control-port <n>     port of the control API (default: a free one)
  --app-id <id>          the AppId it accepts (default: local-app)
  --app-secret <secret>  its AppSecret (default: random)
  --token <token>        also accept this access token (token mode); repeatable
  --lock-ttl-seconds <n> lock lifetime after create or renew (default: 600)
  --fail <rule>          a scripted failure, repeatable: <operation>=<kind>[:<times>]
                         operation: create | renew | release | any
                         kind: unavailable | throttled | internal | gone | drop | <HTTP status> | latency<ms>
                         e.g. --fail renew=gone  --fail create=unavailable:2  --fail any=latency300
  --latency-ms <n>       delay added to every request
  -h, --help             this text

Control API (JSON): POST /faults {"on","with","times","lockId","userId"} adds a failure; DELETE /faults
removes them all; GET /locks and GET /requests show the state; POST /reset forgets locks, requests and faults.`;

/** `renew=gone:2` → a KooDriveFailure; throws a message naming the rule when it is not one. */
function parseFailRule(rule: string): KooDriveFailure {
  const match = /^(create|renew|release|any)=([a-z]+|\d{3}|latency\d+)(?::(\d+))?$/.exec(rule);
  if (!match) throw new Error(`--fail ${rule}: expected <operation>=<kind>[:<times>], e.g. renew=gone:1`);
  const [, on, kind, times] = match as unknown as [string, string, string, string | undefined];
  let failure: KooDriveFailureKind;
  if (/^\d{3}$/.test(kind)) failure = { status: Number(kind) };
  else if (kind.startsWith('latency')) failure = { latencyMs: Number(kind.slice('latency'.length)) };
  else failure = kind as KooDriveFailureKind;
  const parsed: KooDriveFailure = {
    with: failure,
    ...(on === 'any' ? {} : { on: on as KooDriveFailure['on'] }),
    ...(times === undefined ? {} : { times: Number(times) }),
  };
  faultRuleOf(parsed); // refuses an unknown kind now, with its name
  return parsed;
}

function port(name: string, value: string | undefined): number {
  if (value === undefined) return 0;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`--${name} must be a port number, got ${value}`);
  return n;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      'control-port': { type: 'string' },
      'app-id': { type: 'string' },
      'app-secret': { type: 'string' },
      token: { type: 'string', multiple: true },
      'lock-ttl-seconds': { type: 'string' },
      fail: { type: 'string', multiple: true },
      'latency-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const ttlSeconds = Number(values['lock-ttl-seconds'] ?? 600);
  if (!(ttlSeconds > 0)) throw new Error(`--lock-ttl-seconds must be a positive number`);
  const latencyMs = Number(values['latency-ms'] ?? 0);
  if (!(latencyMs >= 0)) throw new Error(`--latency-ms must be a number >= 0`);
  const failures = (values.fail ?? []).map(parseFailRule);
  const appId = values['app-id'] ?? 'local-app';
  const appSecret = values['app-secret'] ?? randomBytes(24).toString('base64url');

  const emulator = await startKooDriveEmulator({
    apps: { [appId]: appSecret },
    tokens: values.token ?? [],
    lockTtlMs: ttlSeconds * 1000,
    port: port('port', values.port),
  });
  for (const failure of failures) emulator.fault(faultRuleOf(failure));
  emulator.setLatency(latencyMs);

  const send = (res: ServerResponse, status: number, body?: unknown) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const control = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const route = `${req.method ?? ''} ${req.url ?? ''}`;
      const body = await readBody(req);
      try {
        if (route === 'POST /faults') {
          emulator.fault(faultRuleOf(JSON.parse(body?.toString('utf8') ?? '') as KooDriveFailure));
          return send(res, 204);
        }
        if (route === 'DELETE /faults') return (emulator.clearFaults(), send(res, 204));
        if (route === 'GET /locks') return send(res, 200, emulator.locks());
        if (route === 'GET /requests') {
          return send(
            res,
            200,
            emulator.requests.map((r) => ({ operation: operationOf(r.method), ...r })),
          );
        }
        if (route === 'POST /reset') return (emulator.reset(), send(res, 204));
        send(res, 404, { error: `no route ${route}` });
      } catch (error) {
        send(res, 400, { error: error instanceof Error ? error.message : String(error) });
      }
    })();
  });
  const controlUrl = await listenOnLoopback(control, port('control-port', values['control-port']));
  const closeControl = closerOf(control);

  process.stdout.write(
    `${JSON.stringify({
      url: emulator.url,
      appId,
      appSecret,
      tokens: values.token ?? [],
      settings: { endpoint: emulator.url, appId, appSecret },
      control: controlUrl,
    })}\n`,
  );
  const stop = () => {
    void Promise.all([emulator.close(), closeControl()]).then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`koodrive-emulator: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
});
