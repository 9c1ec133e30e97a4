/** Shared by the local servers: listen on 127.0.0.1 with a free port, and close once, idle sockets included. */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens on 127.0.0.1 with a port the system picks; resolves with the server's http:// origin. */
export async function listenOnLoopback(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
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
