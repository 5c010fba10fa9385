/** Serves the app on a socket, with timeouts that keep slow or stuck clients from holding connections. */
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiDeps, createApp } from './app';

export interface ApiServerOptions extends ApiDeps {
  /** Default: config.api.host / config.api.port (0 = any free port). */
  host?: string;
  port?: number;
}

export interface RunningApiServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** How long close() lets requests in flight finish before cutting their connections. */
const CLOSE_GRACE_MS = 5000;

export async function startApiServer(o: ApiServerOptions): Promise<RunningApiServer> {
  const server = createServer(createApp(o));
  server.headersTimeout = 15_000;
  server.requestTimeout = 60_000;
  server.keepAliveTimeout = 5_000;
  const host = o.host ?? o.config.api.host;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? o.config.api.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  const url = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
  return {
    url,
    server,
    close: () =>
      new Promise<void>((resolve, reject) => {
        const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        force.unref();
        server.close((err) => {
          clearTimeout(force);
          if (err) reject(err);
          else resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
