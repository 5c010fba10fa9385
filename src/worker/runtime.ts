import { DefaultLogger, makeTelemetryFilterString, Runtime } from '@temporalio/worker';
import type { Logger } from '../logger';

/** Routes the SDK's and the Rust core's logs into our JSON logger. Once per process, before any worker. */
export function installRuntime(logger: Logger, shutdownSignals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): void {
  const level = logger.level === 'debug' || logger.level === 'trace' ? 'DEBUG' : 'WARN';
  Runtime.install({
    logger: new DefaultLogger(level, (e) => {
      const fn = e.level === 'ERROR' ? 'error' : e.level === 'WARN' ? 'warn' : e.level === 'INFO' ? 'info' : 'debug';
      logger[fn]({ ...e.meta, sdk: true }, e.message);
    }),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} } },
    shutdownSignals,
  });
}
