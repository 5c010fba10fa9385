/**
 * Structured JSON logs (pino). Secrets never reach a log line: the usual credential fields are redacted
 * wherever they appear, and code never logs tokens in the first place (this is the second fence).
 */
import pino, { Logger } from 'pino';

export type { Logger };

const REDACT = [
  'token', '*.token', 'secret', '*.secret', 'authorization', '*.authorization', 'headers.authorization',
  'req.headers.authorization', 'req.headers["x-ads-signature"]', 'webhookSecret', '*.webhookSecret',
  'readToken', '*.readToken', 'writeToken', '*.writeToken', 'password', '*.password',
];

export function createLogger(level = process.env.LOG_LEVEL ?? 'info', name = 'ads-mitigator'): Logger {
  return pino({ name, level, redact: { paths: REDACT, censor: '[redacted]' }, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}
