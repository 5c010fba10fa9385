/**
 * The intake side of the app, assembled once for `npm start` and `npm run api` (each API replica): the HTTP
 * API (webhook, REST, feeds, metrics) and the syslog CEF listener, over one BlockService, with the same
 * MAX_TARGETS_PER_EVENT lift (an event whose addresses every target's enforcement can hold).
 */
import type { Client } from '@temporalio/client';
import type { Config } from './config';
import type { FortiOSClient } from './fortios/client';
import type { Logger } from './logger';
import { BlockService } from './blocks/service';
import { AheadWriter } from './blocks/ahead-writer';
import { capacityOf } from './enforcement';
import { createBackends } from './worker/worker';
import { recordFirewallCall } from './api/metrics';
import { startApiServer } from './api/server';
import type { Notifications } from './notify/durable';
import { startSyslogIntake } from './syslog/listener';

export interface FrontDoors {
  apiUrl: string;
  /** Where the syslog listener listens, when it is on. */
  syslog?: { udp?: number; tcp?: number; tls?: boolean };
  close(): Promise<void>;
}

export async function startFrontDoors(o: { config: Config; client: Client; firewalls: Map<string, FortiOSClient>; logger: Logger; notifications?: Notifications }): Promise<FrontDoors> {
  const { config, client, firewalls, logger } = o;
  const blocks = createBlockService(config, client, firewalls);
  const canHold = (n: number) => config.targets.every((t) => capacityOf(t) >= n);
  const api = await startApiServer({ config, blocks, temporal: client, firewalls, logger, notifications: o.notifications, canHold });
  const syslog = await startSyslogIntake({ config, blocks, temporal: client, logger, canHold }).catch(async (err) => {
    await api.close();
    throw err;
  });
  return {
    apiUrl: api.url,
    syslog: syslog ? { udp: syslog.udp?.port, tcp: syslog.tcp?.port, tls: !!syslog.tls } : undefined,
    async close() {
      await syslog?.close();
      await api.close();
    },
  };
}

/** The one BlockService of an API process (the front doors here; the bench's in-process stack). */
export function createBlockService(config: Config, client: Client, firewalls: Map<string, FortiOSClient>): BlockService {
  return new BlockService(client, config, config.block.earlyAdd ? aheadWriter(config, firewalls) : undefined);
}

/**
 * Early adds written from here (src/blocks/ahead-writer.ts), for the targets whose backend can take them beside
 * the enforcer. The API holds each firewall's client already (its readiness probe): no new credential. Built
 * like the worker's backends, so these writes show in the firewall-call metrics (failures included).
 */
function aheadWriter(config: Config, firewalls: Map<string, FortiOSClient>): AheadWriter {
  return new AheadWriter(createBackends(config.targets, firewalls, recordFirewallCall));
}
