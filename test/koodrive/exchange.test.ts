/**
 * The undici exchange on its own: a scripted dispatcher drives the handler through undici's callbacks (what a
 * real socket cannot be made to do on cue), and a real loopback server checks the process-wide pool.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Dispatcher } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AttemptTimeoutError,
  defaultDispatcher,
  errorCode,
  errorMessage,
  exchange,
} from '../../src/koodrive/exchange';

const OPTIONS: Dispatcher.DispatchOptions = { origin: 'http://127.0.0.1:9', path: '/', method: 'DELETE' };

interface Controller {
  aborted: unknown[];
  controller: Dispatcher.DispatchController;
}

function controllerStub(): Controller {
  const aborted: unknown[] = [];
  const controller = {
    abort: (reason: unknown) => aborted.push(reason),
    pause() {},
    resume() {},
  } as unknown as Dispatcher.DispatchController;
  return { aborted, controller };
}

/** A dispatcher whose dispatch() hands the handler to `script`. */
function scripted(script: (handler: Dispatcher.DispatchHandler, c: Controller) => void): {
  dispatcher: Dispatcher;
  c: Controller;
} {
  const c = controllerStub();
  const dispatcher = {
    dispatch(_options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) {
      script(handler, c);
      return true;
    },
  } as unknown as Dispatcher;
  return { dispatcher, c };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('exchange', () => {
  it('answers the status, the headers and the chunks of the body as one UTF-8 text', async () => {
    const { dispatcher, c } = scripted((h, { controller }) => {
      h.onRequestStart?.(controller, {});
      h.onResponseStart?.(controller, 418, { 'retry-after': '3' }, "I'm a teapot");
      h.onResponseData?.(controller, Buffer.from('{"code":'));
      h.onResponseData?.(controller, Buffer.from('"ü"}'));
      h.onResponseEnd?.(controller, {});
    });
    expect(await exchange(dispatcher, OPTIONS, 1000, 64)).toEqual({
      status: 418,
      headers: { 'retry-after': '3' },
      text: '{"code":"ü"}',
    });
    expect(c.aborted).toEqual([]);
  });

  it('reads a body of exactly maxBytes; one byte more is not read and the connection is aborted', async () => {
    const answer = (size: number) =>
      scripted((h, { controller }) => {
        h.onRequestStart?.(controller, {});
        h.onResponseStart?.(controller, 200, {}, 'OK');
        h.onResponseData?.(controller, Buffer.alloc(size - 1, 'a'));
        h.onResponseData?.(controller, Buffer.from('b'));
        h.onResponseData?.(controller, Buffer.from('c')); // after the cap: ignored
        h.onResponseEnd?.(controller, {});
      });
    const exact = answer(10);
    expect((await exchange(exact.dispatcher, OPTIONS, 1000, 11)).text).toBe('aaaaaaaaabc');
    const over = answer(10);
    expect(await exchange(over.dispatcher, OPTIONS, 1000, 9)).toEqual({
      status: 200,
      headers: {},
      text: undefined,
    });
    expect(over.c.aborted).toHaveLength(1);
    expect((over.c.aborted[0] as Error).message).toBe('response body too large');
  });

  it('times out after timeoutMs, aborting the request it started', async () => {
    const { dispatcher, c } = scripted((h, { controller }) => h.onRequestStart?.(controller, {}));
    const started = performance.now();
    const error = await exchange(dispatcher, OPTIONS, 50, 64).catch((e: unknown) => e);
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    expect(error).toBeInstanceOf(AttemptTimeoutError);
    expect((error as Error).message).toBe('timed out after 50 ms');
    expect(c.aborted).toEqual([error]);
  });

  it('a request still queued when it timed out is aborted as soon as it would start', async () => {
    let start: (() => void) | undefined;
    const { dispatcher, c } = scripted((h, { controller }) => {
      start = () => h.onRequestStart?.(controller, {});
    });
    await expect(exchange(dispatcher, OPTIONS, 20, 64)).rejects.toThrow(AttemptTimeoutError);
    expect(c.aborted).toEqual([]);
    start?.();
    expect(c.aborted).toHaveLength(1);
    expect(c.aborted[0]).toBeInstanceOf(AttemptTimeoutError);
    expect((c.aborted[0] as Error).message).toBe('timed out after 20 ms');
  });

  it('a request that starts in time is not aborted, and its timer is gone once answered', async () => {
    const { dispatcher, c } = scripted((h, { controller }) => {
      h.onRequestStart?.(controller, {});
      h.onResponseStart?.(controller, 200, {}, 'OK');
      h.onResponseEnd?.(controller, {});
    });
    await exchange(dispatcher, OPTIONS, 30, 64);
    await sleep(60);
    expect(c.aborted).toEqual([]);
  });

  it('rejects with undici error of the response, once', async () => {
    const failure = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
    const { dispatcher } = scripted((h, { controller }) => {
      h.onRequestStart?.(controller, {});
      h.onResponseError?.(controller, failure);
      h.onResponseEnd?.(controller, {}); // too late: the first settlement stands
    });
    await expect(exchange(dispatcher, OPTIONS, 1000, 64)).rejects.toBe(failure);
  });

  it('rejects when dispatch() itself throws, turning a non-Error into an Error', async () => {
    const thrown = (value: unknown) =>
      ({
        dispatch() {
          throw value;
        },
      }) as unknown as Dispatcher;
    const error = new TypeError('invalid header');
    await expect(exchange(thrown(error), OPTIONS, 1000, 64)).rejects.toBe(error);
    const wrapped = await exchange(thrown('plain text'), OPTIONS, 1000, 64).catch((e: unknown) => e);
    expect(wrapped).toBeInstanceOf(Error);
    expect((wrapped as Error).message).toBe('plain text');
  });
});

describe('undici error codes and messages', () => {
  it('reads a string code, also from the first error of an AggregateError', () => {
    expect(errorCode(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe('ECONNRESET');
    expect(errorCode(new AggregateError([Object.assign(new Error('a'), { code: 'ECONNREFUSED' })]))).toBe(
      'ECONNREFUSED',
    );
    expect(
      errorCode(Object.assign(new AggregateError([{ code: 'ECONNREFUSED' }]), { code: 'UND_ERR_CONNECT' })),
    ).toBe('UND_ERR_CONNECT');
    expect(errorCode(new AggregateError([]))).toBeUndefined();
    expect(errorCode(new AggregateError([{ code: 7 }]))).toBeUndefined();
    expect(errorCode({ code: 7 })).toBeUndefined();
    expect(errorCode('ECONNRESET')).toBeUndefined();
    expect(errorCode(null)).toBeUndefined();
    expect(errorCode(new Error('no code'))).toBeUndefined();
  });

  it('describes an Error by its message and anything else as text', () => {
    expect(errorMessage(new Error('boom'))).toBe('boom');
    expect(errorMessage('boom')).toBe('boom');
    expect(errorMessage(42)).toBe('42');
  });
});

describe('the process-wide dispatcher', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  it('is created once, with its pool capped at the connections it was first asked for', async () => {
    const agent = defaultDispatcher(1);
    expect(defaultDispatcher()).toBe(agent);
    expect(defaultDispatcher(8)).toBe(agent);
    let connections = 0;
    server = createServer((_req, res) => {
      setTimeout(() => res.end('{"code":0}'), 30);
    });
    server.on('connection', () => (connections += 1));
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const answers = await Promise.all(
      [1, 2, 3].map(() => exchange(agent, { origin, path: '/', method: 'GET' }, 2000, 64)),
    );
    expect(answers.map((a) => a.text)).toEqual(['{"code":0}', '{"code":0}', '{"code":0}']);
    expect(connections, 'one connection for three concurrent requests').toBe(1);
  });
});
