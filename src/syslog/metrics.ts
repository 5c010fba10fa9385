/**
 * Prometheus metrics of the syslog listener, registered on a given registry (in production the process-wide
 * one that GET /metrics serves, `sharedMetrics().registry`); one instance per registry, so a second
 * listener in the same process shares the counters instead of failing to register them.
 */
import { Counter, Gauge, Registry } from 'prom-client';

export type Transport = 'udp' | 'tcp' | 'tls';

/** What became of one syslog message (a datagram, or a frame of a TCP stream). */
export type MessageOutcome = 'accepted' | 'malformed' | 'oversized' | 'unauthorized' | 'dropped' | 'failed';

export class SyslogMetrics {
  readonly messages: Counter<'transport' | 'outcome'>;
  readonly events: Counter<'outcome'>;
  readonly connections: Gauge<'transport'>;
  readonly refused: Counter<'transport' | 'reason'>;
  readonly queued: Gauge;
  readonly retries: Counter;

  private constructor(registry: Registry) {
    const registers = [registry];
    this.messages = new Counter({
      name: 'ads_mitigator_syslog_messages_total',
      help: 'Syslog messages received, by transport and outcome (accepted, malformed, oversized, unauthorized sender, dropped under load, failed after retries)',
      labelNames: ['transport', 'outcome'],
      registers,
    });
    this.events = new Counter({
      name: 'ads_mitigator_syslog_events_total',
      help: 'ADS events from syslog, by intake outcome (started, extended, duplicate, unchanged, ignored, rejected)',
      labelNames: ['outcome'],
      registers,
    });
    this.connections = new Gauge({ name: 'ads_mitigator_syslog_connections', help: 'Open syslog TCP/TLS connections', labelNames: ['transport'], registers });
    this.refused = new Counter({
      name: 'ads_mitigator_syslog_connections_refused_total',
      help: 'Syslog connections closed at once, by reason (unauthorized sender, too-many connections, tls handshake failed)',
      labelNames: ['transport', 'reason'],
      registers,
    });
    this.queued = new Gauge({ name: 'ads_mitigator_syslog_queued_events', help: 'ADS events from syslog waiting for the intake', registers });
    this.retries = new Counter({ name: 'ads_mitigator_syslog_intake_retries_total', help: 'Intake calls retried because Temporal was unreachable or failed', registers });
  }

  private static readonly byRegistry = new WeakMap<Registry, SyslogMetrics>();

  static on(registry: Registry): SyslogMetrics {
    let m = SyslogMetrics.byRegistry.get(registry);
    if (!m) SyslogMetrics.byRegistry.set(registry, (m = new SyslogMetrics(registry)));
    return m;
  }
}
