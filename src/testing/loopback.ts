/**
 * Shared by the local servers: listen on 127.0.0.1 with a free port, read a request body with a cap, and close
 * once, idle sockets included.
 */
import { once } from 'node:events';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens on 127.0.0.1 with `port`, or one the system picks (0); resolves with the server's http:// origin. */
export async function listenOnLoopback(server: Server, port = 0): Promise<string> {
  server.listen(port, '127.0.0.1');
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([error]) => Promise.reject(error as Error)),
  ]);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A close() that stops listening and destroys every connection (keep-alive ones too); later calls share it. */
export function closerOf(server: Server, beforeClose?: () => void): () => Promise<void> {
  let closed: Promise<void> | undefined;
  return () => {
    closed ??= new Promise<void>((resolve) => {
      beforeClose?.();
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closed;
  };
}

/** The most a local server reads of a request body. */
export const MAX_BODY_BYTES = 64 * 1024;

/** The request body, or undefined when it is larger than MAX_BODY_BYTES (the rest is not read). */
export async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}
