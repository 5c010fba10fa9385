/**
 * Hard limits of the HTTP API. They bound what one request can cost us, so that a misbehaving or hostile
 * sender cannot take the service (or Temporal behind it) down.
 */
export interface ApiLimits {
  /** Webhook body, after decompression (413 beyond). */
  maxWebhookBytes: number;
  /** Items (events and raw lines) per webhook request (413 beyond). */
  maxEvents: number;
  /** Webhook requests per minute per source IP (429 beyond). */
  webhookPerMinute: number;
  /** REST request bodies are small JSON objects. */
  maxRestBytes: number;
  /** Block operations in flight for one webhook request. */
  blockConcurrency: number;
  /** How long a Temporal reachability probe may take before we answer 503. */
  temporalProbeMs: number;
  /** A successful probe is trusted this long (a probe per request would double the load on Temporal). */
  temporalProbeCacheMs: number;
  /** How long /readyz waits for each firewall's status call. */
  firewallProbeMs: number;
  /** One readiness result answers every /readyz call this long (a probe flood must not reach the firewall). */
  readinessCacheMs: number;
}

export const DEFAULT_LIMITS: Readonly<ApiLimits> = Object.freeze({
  maxWebhookBytes: 1024 * 1024,
  maxEvents: 500,
  webhookPerMinute: 600,
  maxRestBytes: 64 * 1024,
  blockConcurrency: 16,
  temporalProbeMs: 2000,
  temporalProbeCacheMs: 2000,
  firewallProbeMs: 3000,
  readinessCacheMs: 3000,
});
