/**
 * Serves the app on a socket, with timeouts that keep slow or stuck clients from holding connections:
 * HTTPS when the configuration has a certificate (mutual TLS with a client CA), plain HTTP only on loopback
 * unless API_ALLOW_PLAINTEXT says otherwise (and then with a loud warning).
 */
import { createServer, Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ApiDeps, createApp } from './app';
import { httpsOptions, isLoopbackHost, plaintextProblem } from './listen';

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
  const host = o.host ?? o.config.api.host;
  const { tls } = o.config.api;
  const refused = plaintextProblem(o.config.api, host);
  if (refused) throw new Error(refused);
  if (!tls && !isLoopbackHost(host)) {
    o.logger.warn({ host }, 'API serves PLAIN HTTP on a non-loopback address (API_ALLOW_PLAINTEXT=true): the webhook secret and API tokens travel in clear unless a TLS proxy is in front');
  }
  const app = createApp(o);
  // https.Server is an http.Server with TLS underneath: same timeouts, same close().
  const server: Server = tls ? (createHttpsServer(httpsOptions(tls), app) as unknown as Server) : createServer(app);
  server.headersTimeout = 15_000;
  server.requestTimeout = 60_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? o.config.api.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  const url = `${tls ? 'https' : 'http'}://${address.includes(':') ? `[${address}]` : address}:${port}`;
  if (tls) o.logger.info({ url, mutualTls: !!tls.clientCaFile }, 'API serves HTTPS');
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
