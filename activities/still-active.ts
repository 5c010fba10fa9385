/**
 * STILL_ACTIVE: the one activity a block calls before it lapses (is its attacker still active?), and the
 * settings a block is admitted with. Absent settings (the default) = the block never asks. The activity
 * never fails: a port that cannot tell answers `unknown` (logged, counted), and the block lifts on time.
 */
import { log } from '@temporalio/activity';
import type { StillActiveAnswer, StillActiveQuestion, StillActiveRuntime } from '../src/still-active';
import type { Admission } from './enforcement';
import type { StillActiveSettings } from '../workflows/messages';

/** Observes every answer (metrics, tests). */
export type StillActiveHook = (answer: StillActiveAnswer) => void;

export interface StillActiveDeps {
  /** The worker's STILL_ACTIVE (createStillActive); undefined = off. */
  stillActive?: StillActiveRuntime;
  onStillActive?: StillActiveHook;
}

export function createStillActiveActivities(d: StillActiveDeps) {
  return {
    async askStillActive(q: StillActiveQuestion): Promise<StillActiveAnswer> {
      let answer: StillActiveAnswer;
      if (!d.stillActive) {
        // Admitted while the option was on; this worker runs with it off: nothing extends.
        answer = { verdict: 'unknown', source: 'intake', detail: 'STILL_ACTIVE is off on this worker' };
      } else {
        try {
          answer = await d.stillActive.port.ask(q);
        } catch (err) {
          // Ports answer instead of throwing; this is the fence (no message: it could carry anything).
          answer = { verdict: 'unknown', source: d.stillActive.port.source, detail: `the ${d.stillActive.port.source} port failed (${(err as Error)?.name ?? 'error'})` };
        }
      }
      const fields = { target: q.target, ip: q.ip, source: answer.source, verdict: answer.verdict, detail: answer.detail };
      if (answer.verdict === 'unknown') log.warn('still-active: no answer, the block lifts on time', fields);
      else log.info('still-active: answered', fields);
      d.onStillActive?.(answer);
      return answer;
    },
  };
}

/** admitBlock, with the worker's STILL_ACTIVE settings added to an admission (unchanged when off). */
export function withStillActiveSettings<I>(admit: (input: I) => Promise<Admission>, d: StillActiveDeps): (input: I) => Promise<Admission & { stillActive?: StillActiveSettings }> {
  const settings = d.stillActive?.settings;
  if (!settings) return admit;
  return async (input) => {
    const admission = await admit(input);
    return admission.ok ? { ...admission, stillActive: settings } : admission;
  };
}
