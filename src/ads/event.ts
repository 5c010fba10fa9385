/**
 * The normalised Flowmon ADS / IDS event, whatever format it arrived in
 * (reference: shared/reference/flowmon-ads.md §1.4–1.6).
 */

/** Ascending order: a higher index is more urgent (ADS perspectives, §4). */
export const PRIORITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Priority = (typeof PRIORITIES)[number];

export interface AdsEvent {
  /** ADS event ID (digits), or the IDS event id; for CEF messages without one, `cef-<hash of the content>`. */
  id: string;
  kind: 'ads' | 'ids';
  /** Where it came from: tab-separated layouts, ADS ≥ 12.5 JSON lines, our own JSON object, or syslog CEF. */
  format: 'standard' | 'extended' | 'ids' | 'json' | 'json-ids' | 'object' | 'cef';
  /** Detection method code, e.g. SSHDICT, SCANS, DOS; 'IDS' for IDS events. */
  method: string;
  /** ADS: method subtype (extended layout). IDS: signature id. */
  subtype?: string;
  /** ADS: method name, e.g. "SSH attack". IDS: alert category. */
  typeDesc?: string;
  perspective?: string;
  /** Undefined when ADS left it empty (manual "Initiate response" run). */
  priority?: Priority;
  /** ADS: free-text detail. IDS: signature name. */
  detail?: string;
  /** The event's source IP, as written by ADS (validated as an IP address, not canonicalised). */
  source?: string;
  targets: string[];
  /** ADS: data feed name. IDS: the probe, "<logSourceIp> <logSourceInterface>". */
  dataFeed?: string;
  /** Raw ADS detection time / IDS firstSeen, no time zone (appliance local time, §7). */
  detectedAt?: string;
  /** ADS: port numbers field. IDS: destination port. */
  ports?: string;
  protocol?: string;
  userIdentity?: string;
}

const PRIORITY_NAMES: Readonly<Record<string, Priority>> = {
  critical: 'critical',
  high: 'high',
  medium: 'medium',
  low: 'low',
  // ADS docs say INFORMATIONAL, its e-mail reports say INFORMATION (§1.5, §4).
  info: 'info',
  information: 'info',
  informational: 'info',
};

/**
 * ADS priority from its name (any case) or its number 1..5 (5 = critical, as the REST API is
 * believed to number them, §5.3). Undefined for empty or unrecognised input: callers that must tell
 * the two apart check for emptiness first.
 */
export function parsePriority(s: string | number | undefined): Priority | undefined {
  if (typeof s === 'number') return Number.isInteger(s) && s >= 1 && s <= 5 ? PRIORITIES[s - 1] : undefined;
  if (typeof s !== 'string') return undefined;
  const text = s.trim().toLowerCase();
  if (/^[1-5]$/.test(text)) return PRIORITIES[Number(text) - 1];
  return Object.prototype.hasOwnProperty.call(PRIORITY_NAMES, text) ? PRIORITY_NAMES[text] : undefined;
}

const SURICATA_LEVELS: Readonly<Record<string, Priority | undefined>> = { '1': 'high', '2': 'medium', '3': 'low', '4': 'info' };

/**
 * IDS severity is the Suricata signature priority, where 1 is the MOST severe (1 high, 2 medium,
 * 3 low, 4 informational) — the opposite direction to the ADS numbering, hence its own function.
 * A priority name is accepted as well. ASSUMPTION: not confirmed on a Flowmon IDS appliance.
 */
export function parseIdsSeverity(s: string | number | undefined): Priority | undefined {
  const text = typeof s === 'number' ? String(s) : typeof s === 'string' ? s.trim() : '';
  if (/^\d+$/.test(text)) return SURICATA_LEVELS[text];
  return parsePriority(text);
}

/** 0 (info) .. 4 (critical), for threshold comparisons. */
export function priorityRank(p: Priority): number {
  return PRIORITIES.indexOf(p);
}
