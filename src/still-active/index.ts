/**
 * The still-active option (STILL_ACTIVE): which port answers, and the settings a block is admitted with.
 * Off by default; see README "Blocks that outlive a once-firing event".
 */
import type { StillActiveSettings } from '../../workflows/messages';
import { FlowmonStillActive } from './flowmon';
import { IntakeStillActive } from './intake';
import type { StillActivePort } from './port';

export type { StillActiveAnswer, StillActivePort, StillActiveQuestion, StillActiveSource, StillActiveVerdict } from './port';
export { FlowmonStillActive } from './flowmon';
export { IntakeStillActive } from './intake';

export const STILL_ACTIVE_MODES = ['off', 'intake', 'flowmon'] as const;
export type StillActiveMode = (typeof STILL_ACTIVE_MODES)[number];

export interface StillActiveConfig {
  mode: StillActiveMode;
  /** STILL_ACTIVE_WINDOW: asked this long before expiry; flowmon looks this far back. */
  windowMs: number;
  /** STILL_ACTIVE_MAX_TOTAL: still-active extensions never carry a block past its start + this. */
  maxTotalMs: number;
  flowmon?: { url: string; user: string; password: string; caFile?: string; timeZone: string };
}

/** What the worker hands to its activities: the port and the settings blocks are admitted with. */
export interface StillActiveRuntime {
  port: StillActivePort;
  settings: StillActiveSettings;
}

export function createStillActive(c: StillActiveConfig): StillActiveRuntime | undefined {
  if (c.mode === 'off') return undefined;
  const port = c.mode === 'flowmon' ? new FlowmonStillActive({ baseUrl: c.flowmon!.url, user: c.flowmon!.user, password: c.flowmon!.password, caFile: c.flowmon!.caFile, timeZone: c.flowmon!.timeZone }) : new IntakeStillActive();
  return { port, settings: { source: port.source, windowMs: c.windowMs, maxTotalMs: c.maxTotalMs } };
}
