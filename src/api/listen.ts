/**
 * How the API listens: HTTPS when it has a certificate (mutual TLS with a client CA), plain HTTP only on
 * loopback unless explicitly allowed, because the webhook secret and the API tokens travel in its headers.
 * One home for that rule: the configuration check and the server both ask here.
 */
import { readFileSync } from 'node:fs';
import type { ServerOptions } from 'node:https';
import { isIP } from 'node:net';
import type { Config } from '../config';

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, their IPv4-mapped form, `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h) || /^(0{1,4}:){7}0{0,3}1$/.test(h);
  return false;
}

/** Why this listening set-up is refused, or undefined when it is fine. */
export function plaintextProblem(api: Pick<Config['api'], 'host' | 'tls' | 'allowPlaintext'>, host = api.host): string | undefined {
  if (api.tls || api.allowPlaintext || isLoopbackHost(host)) return undefined;
  return (
    `API_HOST=${host}: plain HTTP on a non-loopback address would send the webhook secret and the API tokens in clear; ` +
    'set API_TLS_CERT and API_TLS_KEY, or API_ALLOW_PLAINTEXT=true (e.g. behind a TLS-terminating proxy)'
  );
}

/** Node's HTTPS options from the configured PEM files; a client CA requires and verifies client certificates. */
export function httpsOptions(tls: NonNullable<Config['api']['tls']>): ServerOptions {
  return {
    cert: readFileSync(tls.certFile),
    key: readFileSync(tls.keyFile),
    minVersion: 'TLSv1.2',
    ...(tls.clientCaFile ? { ca: readFileSync(tls.clientCaFile), requestCert: true, rejectUnauthorized: true } : {}),
  };
}
