/**
 * Which IPs an ADS event asks us to block. Pure.
 *
 * Blocking a victim or our own server is the worst mistake this product can make, so the method
 * decides WHICH address is the attacker (reference §3), and the methods whose source is a victim
 * are refused here even if a configuration lists them (defence in depth; validateIntakePolicy
 * rejects such a configuration up front). Whether an address may be blocked at all (reserved,
 * private, allowlisted) is ip-policy's decision, taken afterwards.
 */
import { canonicalIp } from '../policy/ip-policy';
import { AdsEvent, PRIORITIES, Priority, priorityRank } from './event';

export interface IntakePolicy {
  /** Lowest priority that blocks. */
  minPriority: Priority;
  /** Methods whose event source is the attacker. */
  blockSourceMethods: readonly string[];
  /** Methods whose event targets are the attackers (DOS: the source is the victim). */
  blockTargetsMethods: readonly string[];
  /** Block the source of Flowmon IDS events. */
  acceptIds: boolean;
  /**
   * An event that would block more addresses than this (a DOS event may name hundreds of "attackers",
   * often spoofed) is ignored as a whole, unless the enforcement backend can hold them all (CanHold).
   */
  maxTargetsPerEvent: number;
}

/**
 * Whether the firewall side can take `targetCount` new blocks from one event (e.g. a threat feed or the
 * banned-IP list holds thousands, an address group 600): true lifts MAX_TARGETS_PER_EVENT for that event.
 * The default answers false: the cap applies.
 */
export type CanHold = (targetCount: number) => boolean;

export const CAP_APPLIES: CanHold = () => false;

/** Class A of §3: the source is the actor. */
const SOURCE_IS_ATTACKER = ['SCANS', 'SSHDICT', 'RDPDICT', 'DICTATTACK', 'HTTPDICT', 'TELNET', 'SIPSCAN', 'SIPFLOOD', 'HONEYPOT'];

export const DEFAULT_INTAKE_POLICY: Readonly<IntakePolicy> = Object.freeze({
  minPriority: 'medium',
  blockSourceMethods: Object.freeze(SOURCE_IS_ATTACKER),
  // "the source IP address is the address of the attack victim, and attackers are listed as event targets"
  blockTargetsMethods: Object.freeze(['DOS']),
  acceptIds: false,
  maxTargetsPerEvent: 100,
});

/**
 * Methods that must never block anything: their source is our own server (SRVNA: the provider of
 * the unavailable service; REFLECTDOS: our misused amplifier) and their targets are its clients or
 * the spoofed victims of the reflection.
 */
const NEVER_BLOCK: ReadonlyMap<string, string> = new Map([
  ['SRVNA', 'its source is our own server that stopped answering and its targets are its clients'],
  ['REFLECTDOS', 'its source is our own server misused for amplification and its targets are the victims'],
]);

/** Methods whose source is a victim: blocking the source would punish the attacked host. */
const SOURCE_IS_VICTIM: ReadonlySet<string> = new Set(['DOS', ...NEVER_BLOCK.keys()]);

export type IgnoreRule = 'below-threshold' | 'priority-unknown' | 'method-not-blocking' | 'ids-disabled' | 'no-address' | 'too-many-targets';

export type Decision =
  | { action: 'block'; ips: string[]; role: 'source' | 'targets' }
  | { action: 'ignore'; rule: IgnoreRule; reason: string };

/**
 * Rules, in order: IDS switch, method (what may be blocked, and whose address), priority, address, and
 * the cap on addresses per event (counted before the safety policy: it bounds what one event may ask).
 * `priority-unknown`: ADS leaves the priority empty when an operator runs the script by hand
 * ("Initiate response", §1.1). Without a rating we cannot apply the threshold, and treating it as
 * low or high would both be guesses; the operator can block by hand through the API instead.
 */
export function decide(e: AdsEvent, p: IntakePolicy, canHold: CanHold = CAP_APPLIES): Decision {
  if (e.kind === 'ids' && !p.acceptIds) {
    return ignore('ids-disabled', `IDS event ${e.id} ignored: IDS events are not accepted (ACCEPT_IDS_EVENTS is off)`);
  }
  const attacker = attackerRole(e, p);
  if ('refusal' in attacker) return ignore('method-not-blocking', attacker.refusal);
  if (e.priority === undefined) {
    return ignore('priority-unknown', `event ${e.id} (${e.method}) has no priority (manual "Initiate response" run?); nothing is blocked automatically`);
  }
  if (priorityRank(e.priority) < priorityRank(p.minPriority)) {
    return ignore('below-threshold', `event ${e.id} (${e.method}) is ${e.priority}, below the minimum priority ${p.minPriority}`);
  }
  const ips = attacker.role === 'source' ? sourceAddress(e) : attackerTargets(e);
  if (ips.length === 0) return ignore('no-address', `event ${e.id} (${e.method}) names no ${attacker.role} address to block`);
  if (ips.length > p.maxTargetsPerEvent && !canHold(ips.length)) {
    return ignore(
      'too-many-targets',
      `event ${e.id} (${e.method}) names ${ips.length} addresses to block, more than MAX_TARGETS_PER_EVENT (${p.maxTargetsPerEvent}); nothing is blocked`,
    );
  }
  return { action: 'block', ips, role: attacker.role };
}

/** Throws an Error when a policy would block a victim, is ambiguous or malformed. */
export function validateIntakePolicy(p: IntakePolicy): void {
  if (!PRIORITIES.includes(p.minPriority)) throw new Error(`intake policy: minPriority must be one of ${PRIORITIES.join(', ')}`);
  if (!Number.isInteger(p.maxTargetsPerEvent) || p.maxTargetsPerEvent < 1) throw new Error('intake policy: maxTargetsPerEvent must be an integer ≥ 1');
  for (const method of [...p.blockSourceMethods, ...p.blockTargetsMethods]) {
    if (!/^[A-Z0-9_]+$/.test(method)) throw new Error(`intake policy: ${JSON.stringify(method)} is not an ADS method code (A-Z, 0-9, _)`);
    const never = NEVER_BLOCK.get(method);
    if (never) throw new Error(`intake policy: ${method} must never block: ${never}`);
    if (p.blockSourceMethods.includes(method) && p.blockTargetsMethods.includes(method)) {
      throw new Error(`intake policy: ${method} is listed both as source-blocking and as targets-blocking`);
    }
  }
  const victim = p.blockSourceMethods.find((method) => SOURCE_IS_VICTIM.has(method));
  if (victim) throw new Error(`intake policy: ${victim} cannot block its source, which is the victim`);
}

/**
 * Whose address the method blocks, or why it blocks nothing. The victim rules come before the
 * configured lists so that no configuration can override them.
 */
function attackerRole(e: AdsEvent, p: IntakePolicy): { role: 'source' | 'targets' } | { refusal: string } {
  if (e.kind === 'ids') return { role: 'source' };
  const never = NEVER_BLOCK.get(e.method);
  if (never) return { refusal: `${e.method} never blocks: ${never}` };
  if (p.blockTargetsMethods.includes(e.method)) return { role: 'targets' };
  if (!p.blockSourceMethods.includes(e.method)) return { refusal: `${e.method} is not a blocking method in the intake policy` };
  if (SOURCE_IS_VICTIM.has(e.method)) return { refusal: `${e.method} never blocks its source, which is the victim` };
  return { role: 'source' };
}

function sourceAddress(e: AdsEvent): string[] {
  return e.source ? [canonical(e.source)] : [];
}

/** Distinct targets, never the event's own source (for DOS that is the victim). */
function attackerTargets(e: AdsEvent): string[] {
  const victim = e.source === undefined ? undefined : canonical(e.source);
  return [...new Set(e.targets.map(canonical))].filter((target) => target !== victim);
}

/** Same address, same text: dedup and the victim comparison must not depend on spelling. */
function canonical(ip: string): string {
  return canonicalIp(ip) ?? ip;
}

function ignore(rule: IgnoreRule, reason: string): Decision {
  return { action: 'ignore', rule, reason };
}
