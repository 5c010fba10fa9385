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
import { capacityOf } from './enforcement';
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
  const blocks = new BlockService(client, config);
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
