/**
 * The still-active port: before a block lapses, is its attacker still at it? Flowmon ADS runs our script
 * once per event, when the event starts, and keeps the event open while the attack goes on: a persistent
 * attacker is otherwise blocked once, for one TTL, and never again. One file per implementation:
 * intake.ts (what our own intakes saw, no credentials) and flowmon.ts (the ADS REST API).
 *
 * Every implementation answers, never throws: `unknown` (it could not tell) never extends a block, so a
 * failing source leaves blocks to lift on time. Answers are recorded in workflow history: their `detail`
 * is ours (a status code, a count, an event id), never a secret or a response body.
 */
import type { AddressFamily } from '../../workflows/messages';

export const STILL_ACTIVE_SOURCES = ['intake', 'flowmon'] as const;
export type StillActiveSource = (typeof STILL_ACTIVE_SOURCES)[number];

/** What a block asks, in workflow time. */
export interface StillActiveQuestion {
  target: string;
  ip: string;
  family: AddressFamily;
  /** When the block asks. */
  atMs: number;
  /** STILL_ACTIVE_WINDOW: flowmon counts ADS events for the IP active in [atMs − windowMs, atMs]. */
  windowMs: number;
  /** Start of the current block period: the block's start or its previous still-active check (intake). */
  sinceMs: number;
  /** When the block last recorded a repeat ADS event (not its first) from any intake (webhook, syslog), if ever. */
  lastEventAtMs?: number;
}

export type StillActiveVerdict = 'seen' | 'not-seen' | 'unknown';

export interface StillActiveAnswer {
  verdict: StillActiveVerdict;
  /** Who answered: the extension's actor is `still-active:<source>`. */
  source: StillActiveSource;
  /** One line for the block's status and the logs (an event id, a status code); never a secret. */
  detail: string;
}

export interface StillActivePort {
  readonly source: StillActiveSource;
  ask(q: StillActiveQuestion): Promise<StillActiveAnswer>;
  close(): Promise<void>;
}
