/**
 * What ads-mitigator tells the outside world, and where: the kinds of notification, their payload and the
 * sinks' settings. PURE (types and constants only): the workflow helper (workflows/notify.ts) imports it.
 */

/** Every kind, in the order the README lists them. */
export const NOTIFY_KINDS = ['block', 'extend', 'unblock', 'expiry', 'eviction', 'rejected', 'firewall-failing', 'firewall-recovered'] as const;
export type NotifyKind = (typeof NOTIFY_KINDS)[number];

export interface NotifyEvent {
  /**
   * Unique and stable across retries and hand-offs: a receiver that sees an id twice (at-least-once
   * delivery) drops the second. Also the `X-ADS-Event-Id` header and the syslog MSGID's structured data.
   */
  id: string;
  kind: NotifyKind;
  /** ISO time of the transition. */
  at: string;
  /** One line for humans (syslog MSG, chat relays). */
  summary: string;
  ip?: string;
  target?: string;
  /** The block's state after the transition. */
  state?: string;
  expiresAt?: string;
  reason?: string;
  actor?: string;
  workflowId?: string;
  /** Kind-specific extras (rejected: the refused IPs; firewall-failing: since when and the last error). */
  details?: Record<string, unknown>;
}

/** A notification as its sender describes it; `id` and `at` are filled in when absent. */
export type NotifyInput = Omit<NotifyEvent, 'id' | 'at'> & Partial<Pick<NotifyEvent, 'id' | 'at'>>;

export interface NotifyWebhookSink {
  url: string;
  /** Signs every request: `X-ADS-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. */
  secret: string;
}

export interface NotifySyslogSink {
  protocol: 'udp' | 'tcp';
  host: string;
  port: number;
}

export interface NotifyConfig {
  /** Kinds that are sent; empty when no sink is configured (then nothing is scheduled at all). */
  kinds: NotifyKind[];
  webhook?: NotifyWebhookSink;
  syslog?: NotifySyslogSink;
  /** A firewall target failing for this long (no successful call since its first failure) is reported once. */
  firewallFailingAfterMs: number;
}

export const NOTIFY_DISABLED: Readonly<NotifyConfig> = Object.freeze({ kinds: [], firewallFailingAfterMs: 120_000 });
