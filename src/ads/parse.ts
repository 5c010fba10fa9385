/**
 * Flowmon ADS event intake: turns what ADS writes on a custom script's stdin (tab-separated
 * standard / extended / IDS lines, ADS ≥ 12.5 JSON lines), or our own JSON objects, into AdsEvents.
 * Pure: no I/O. Layouts and pitfalls: shared/reference/flowmon-ads.md §1.4–1.6 and §7.
 *
 * Rule of the house: a line is accepted only when its field count AND the sanity checks agree on
 * one layout; anything else is rejected with a reason, never guessed.
 */
import { canonicalIp } from '../policy/ip-policy';
import { AdsEvent, parseIdsSeverity, parsePriority, Priority } from './event';

export class AdsParseError extends Error {
  override name = 'AdsParseError';
}

export const MAX_LINE_BYTES = 64 * 1024;
export const MAX_TARGETS = 1000;

export interface AdsBodyResult {
  events: AdsEvent[];
  /** index: position of the item in the body (line number from 0, array index, or `lines` index). */
  errors: { index: number; message: string }[];
}

// ---------------------------------------------------------------------------------------------
// Tab-separated layouts (§1.4). Names that AdsEvent does not carry are kept for readable errors.
// Extended indices 4..6 follow Progress' own docstring and the reference samples (subtype, MITRE,
// type description); Flowmon's FortiGate script reads index 4 as the description (§1.4 conflict).
// ---------------------------------------------------------------------------------------------

type TabFormat = 'standard' | 'extended' | 'ids';

const TAB_LAYOUTS: Readonly<Record<number, { format: TabFormat; fields: readonly string[] }>> = {
  15: {
    format: 'standard',
    fields: ['id', 'detectedAt', 'firstFlowAt', 'method', 'typeDesc', 'perspective', 'priority', 'detail',
      'ports', 'protocol', 'source', 'capturedSource', 'targets', 'dataFeed', 'userIdentity'],
  },
  17: {
    format: 'extended',
    fields: ['id', 'detectedAt', 'firstFlowAt', 'method', 'subtype', 'mitre', 'typeDesc', 'perspective',
      'priority', 'detail', 'ports', 'protocol', 'source', 'capturedSource', 'targets', 'dataFeed', 'userIdentity'],
  },
  14: {
    format: 'ids',
    fields: ['id', 'firstSeen', 'lastSeen', 'srcIp', 'srcPort', 'dstIp', 'dstPort', 'protocol', 'signatureId',
      'signatureName', 'logSourceIp', 'logSourceInterface', 'category', 'severity'],
  },
};

/** JSON keys accepted per AdsEvent field: ADS ≥ 12.5 names (§1.6) and our own object format. */
const ADS_JSON_KEYS: Readonly<Record<string, readonly string[]>> = {
  id: ['id'],
  method: ['method', 'type'],
  subtype: ['subtype'],
  typeDesc: ['typeDesc'],
  perspective: ['perspective'],
  priority: ['priority', 'severity'],
  detail: ['detail'],
  ports: ['ports'],
  protocol: ['protocol'],
  source: ['source'],
  targets: ['targets'],
  dataFeed: ['dataFeed', 'netFlowSource'],
  detectedAt: ['detectedAt', 'timestamp'],
  userIdentity: ['userIdentity'],
};

const IDS_JSON_KEYS: Readonly<Record<string, readonly string[]>> = Object.fromEntries(
  TAB_LAYOUTS[14].fields.map((name) => [name, [name]]),
);

export const EVENT_ID = /^\d{1,20}$/;
export const METHOD_CODE = /^[A-Z0-9_]{1,32}$/;
const PORT_LIST = /^\d{1,5}(?:\s*,\s*\d{1,5})*$/;

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/** Parses one stdin line (with or without its "\n" / "\r\n"). Throws AdsParseError. */
export function parseAdsLine(line: string): AdsEvent {
  if (typeof line !== 'string') throw new AdsParseError('an event line must be a string');
  // Only the terminator goes: trimming would also eat a trailing empty field (" ") and turn a
  // 15-field standard line into a 14-field one that looks like IDS (§1.4 trailing-field trap).
  const text = line.replace(/\r?\n$/, '');
  if (exceedsBytes(text, MAX_LINE_BYTES)) throw new AdsParseError(`line is longer than ${MAX_LINE_BYTES} bytes`);
  if (text.includes('\n')) throw new AdsParseError('line contains a line break: one event per line');
  if (text.trim() === '') throw new AdsParseError('line is empty');
  return text.trimStart().startsWith('{') ? parseJsonLine(text) : parseTabLine(text);
}

/**
 * Parses a webhook body:
 *  (a) one event object in our plain format (or an ADS JSON / IDS JSON object),
 *  (b) an array of such objects and/or raw ADS lines,
 *  (c) the forwarder's `{ "lines": ["<raw line>", ...], "forwarder": {...} }`,
 *  (d) a text body of stdin lines.
 * Bad items are reported in `errors` and do not stop the others; blank lines are skipped.
 * Throws AdsParseError only when the body as a whole has none of these shapes.
 */
export function parseAdsBody(body: unknown): AdsBodyResult {
  const { items, objectsAllowed } = bodyItems(body);
  const result: AdsBodyResult = { events: [], errors: [] };
  items.forEach((item, index) => {
    if (typeof item === 'string' && item.trim() === '') return;
    try {
      result.events.push(parseItem(item, objectsAllowed));
    } catch (error) {
      if (!(error instanceof AdsParseError)) throw error;
      result.errors.push({ index, message: error.message });
    }
  });
  return result;
}

// ---------------------------------------------------------------------------------------------
// Body shapes
// ---------------------------------------------------------------------------------------------

function bodyItems(body: unknown): { items: readonly unknown[]; objectsAllowed: boolean } {
  if (typeof body === 'string') return { items: body.split(/\r?\n/), objectsAllowed: false };
  if (Array.isArray(body)) return { items: body, objectsAllowed: true };
  if (isRecord(body) && 'lines' in body) {
    if (!Array.isArray(body.lines)) throw new AdsParseError('"lines" must be an array of raw ADS lines');
    return { items: body.lines, objectsAllowed: false };
  }
  if (isRecord(body)) return { items: [body], objectsAllowed: true };
  throw new AdsParseError('body must be an event object, an array of events or lines, {"lines": [...]}, or text lines');
}

function parseItem(item: unknown, objectsAllowed: boolean): AdsEvent {
  if (typeof item === 'string') return parseAdsLine(item);
  if (objectsAllowed && isRecord(item)) return parseJsonObject(item, 'object');
  throw new AdsParseError(objectsAllowed ? 'each item must be an event object or a raw ADS line' : 'each line must be a string');
}

// ---------------------------------------------------------------------------------------------
// Field sources: one view over tab fields or JSON keys, so that validation exists once.
// ---------------------------------------------------------------------------------------------

type RawValue = string | string[] | undefined;

interface FieldSource {
  /** Prefix of every error message, e.g. "standard line (15 fields), event 4179523". */
  readonly context: string;
  get(name: string): RawValue;
  /** How the field is named to a human: "field 10 (source)" or "\"source\"". */
  label(name: string): string;
}

function parseTabLine(text: string): AdsEvent {
  // Split on TAB only: details contain commas and spaces (§7). Empty fields arrive as " ".
  const fields = text.split('\t').map((field) => field.trim() || undefined);
  const layout = TAB_LAYOUTS[fields.length];
  if (!layout) {
    throw new AdsParseError(
      `unexpected field count ${fields.length}: expected 14 (IDS), 15 (standard) or 17 (extended) tab-separated fields`,
    );
  }
  const source: FieldSource = {
    context: `${layout.format} line (${fields.length} fields)${EVENT_ID.test(fields[0] ?? '') ? `, event ${fields[0]}` : ''}`,
    // A name the layout lacks (e.g. subtype in standard lines) reads as absent: fields[-1].
    get: (name) => fields[layout.fields.indexOf(name)],
    label: (name) => `field ${layout.fields.indexOf(name)} (${name})`,
  };
  if (layout.format === 'ids') return idsEvent(source, 'ids', strippedStandardHint(fields));
  return adsEvent(source, layout.format);
}

/** A standard line that went through rstrip() has 14 fields like IDS (§1.4): say so when it fails. */
function strippedStandardHint(fields: readonly (string | undefined)[]): string {
  const looksAds = METHOD_CODE.test(fields[3] ?? '') && isHostAddress(fields[10]);
  return looksAds ? ' (this looks like a 15-field standard ADS line whose trailing empty field was stripped)' : '';
}

function parseJsonLine(text: string): AdsEvent {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new AdsParseError(`invalid JSON: ${(error as Error).message}`);
  }
  if (!isRecord(value)) throw new AdsParseError('a JSON event line must hold one object');
  return parseJsonObject(value, 'json');
}

/** IDS objects are told apart by their own address keys (srcIp without an ADS "source"). */
function parseJsonObject(obj: Record<string, unknown>, adsFormat: 'json' | 'object'): AdsEvent {
  const isIds = has(obj, 'srcIp') && !has(obj, 'source');
  const id = EVENT_ID.test(String(obj.id)) ? ` ${String(obj.id)}` : '';
  if (isIds) return idsEvent(jsonSource(obj, IDS_JSON_KEYS, `JSON IDS event${id}`), 'json-ids', '');
  return adsEvent(jsonSource(obj, ADS_JSON_KEYS, `JSON event${id}`), adsFormat);
}

function jsonSource(obj: Record<string, unknown>, keys: Readonly<Record<string, readonly string[]>>, context: string): FieldSource {
  const usedKey = (name: string): string | undefined => {
    const present = (keys[name] ?? []).filter((key) => has(obj, key));
    if (present.length > 1) throw fail(context, `give only one of ${present.map((k) => `"${k}"`).join(', ')}`);
    return present[0];
  };
  return {
    context,
    get: (name) => {
      const key = usedKey(name);
      return key === undefined ? undefined : jsonValue(obj[key], `"${key}"`, name === 'targets', context);
    },
    label: (name) => `"${usedKey(name) ?? name}"`,
  };
}

/** JSON value types are not documented (§1.6): accept strings and numbers, and arrays for targets. */
function jsonValue(value: unknown, label: string, listAllowed: boolean, context: string): RawValue {
  if (listAllowed && Array.isArray(value)) {
    return value.map((item, i) => {
      if (typeof item !== 'string') throw fail(context, `${label}[${i}] must be a string`);
      return item.trim();
    }).filter((item) => item !== '');
  }
  if (typeof value === 'string') {
    if (exceedsBytes(value, MAX_LINE_BYTES)) throw fail(context, `${label} is longer than ${MAX_LINE_BYTES} bytes`);
    return value.trim() || undefined;
  }
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  throw fail(context, `${label} must be a ${listAllowed ? 'string or an array of strings' : 'string or a number'}`);
}

// ---------------------------------------------------------------------------------------------
// Event builders: the sanity checks of §7, shared by every format.
// ---------------------------------------------------------------------------------------------

function adsEvent(src: FieldSource, format: AdsEvent['format']): AdsEvent {
  return withoutUndefined({
    id: matching(src, 'id', EVENT_ID, 'an integer event ID'),
    kind: 'ads',
    format,
    method: matching(src, 'method', METHOD_CODE, 'a method code like SSHDICT (A-Z, 0-9, _)'),
    subtype: text(src, 'subtype'),
    typeDesc: text(src, 'typeDesc'),
    perspective: text(src, 'perspective'),
    priority: priority(src, 'priority', parsePriority),
    detail: text(src, 'detail'),
    source: hostAddress(src, 'source'),
    targets: targetList(src, 'targets'),
    dataFeed: text(src, 'dataFeed'),
    detectedAt: text(src, 'detectedAt'),
    ports: text(src, 'ports'),
    protocol: text(src, 'protocol'),
    userIdentity: text(src, 'userIdentity'),
  });
}

function idsEvent(src: FieldSource, format: 'ids' | 'json-ids', hint: string): AdsEvent {
  try {
    // Checked in field order, so that the first complaint is about the first misplaced field.
    const id = matching(src, 'id', EVENT_ID, 'an integer event ID');
    const source = hostAddress(src, 'srcIp');
    optionalMatching(src, 'srcPort', PORT_LIST, 'a port number');
    const target = hostAddress(src, 'dstIp');
    const ports = optionalMatching(src, 'dstPort', PORT_LIST, 'a port number');
    const probe = [text(src, 'logSourceIp'), text(src, 'logSourceInterface')].filter(Boolean).join(' ');
    return withoutUndefined({
      id,
      kind: 'ids',
      format,
      method: 'IDS',
      subtype: text(src, 'signatureId'),
      typeDesc: text(src, 'category'),
      priority: priority(src, 'severity', parseIdsSeverity),
      detail: text(src, 'signatureName'),
      source,
      targets: [target],
      dataFeed: probe || undefined,
      detectedAt: text(src, 'firstSeen'),
      ports,
      protocol: text(src, 'protocol'),
    });
  } catch (error) {
    if (error instanceof AdsParseError && hint) throw new AdsParseError(error.message + hint);
    throw error;
  }
}

function text(src: FieldSource, name: string): string | undefined {
  const value = src.get(name);
  if (Array.isArray(value)) throw fail(src.context, `${src.label(name)} must be a single value`);
  return value;
}

function matching(src: FieldSource, name: string, pattern: RegExp, what: string): string {
  const value = text(src, name);
  if (value === undefined) throw fail(src.context, `${src.label(name)} is empty; expected ${what}`);
  if (!pattern.test(value)) throw fail(src.context, `${src.label(name)} is ${show(value)}; expected ${what}`);
  return value;
}

function optionalMatching(src: FieldSource, name: string, pattern: RegExp, what: string): string | undefined {
  return text(src, name) === undefined ? undefined : matching(src, name, pattern, what);
}

function hostAddress(src: FieldSource, name: string): string {
  const value = text(src, name);
  if (value === undefined) throw fail(src.context, `${src.label(name)} is empty; expected an IP address`);
  if (!isHostAddress(value)) throw fail(src.context, `${src.label(name)} is ${show(value)}; expected an IP address`);
  return value;
}

/** Empty means "not rated" (manual run, §1.1); a value we cannot read is an error, not a guess. */
function priority(src: FieldSource, name: string, read: (s: string) => Priority | undefined): Priority | undefined {
  const value = text(src, name);
  if (value === undefined) return undefined;
  const parsed = read(value);
  if (!parsed) throw fail(src.context, `${src.label(name)} is ${show(value)}; expected a priority (critical, high, medium, low, info)`);
  return parsed;
}

/** ADS joins targets with ", " (§1.5); JSON may give an array. Each must be an IP address. */
function targetList(src: FieldSource, name: string): string[] {
  const value = src.get(name);
  const targets = Array.isArray(value) ? value : (value ?? '').split(',').map((t) => t.trim()).filter((t) => t !== '');
  if (targets.length > MAX_TARGETS) throw fail(src.context, `${src.label(name)} lists ${targets.length} targets; at most ${MAX_TARGETS} are accepted`);
  const bad = targets.find((target) => !isHostAddress(target));
  if (bad !== undefined) throw fail(src.context, `${src.label(name)} contains ${show(bad)}, which is not an IP address`);
  return targets;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** A single address (no "/len"), IPv4 or IPv6; whether it may be blocked is ip-policy's business. */
export function isHostAddress(value: string | undefined): value is string {
  return value !== undefined && !value.includes('/') && canonicalIp(value) !== undefined;
}

function fail(context: string, message: string): AdsParseError {
  return new AdsParseError(`${context}: ${message}`);
}

export function show(value: string): string {
  const shown = JSON.stringify(value);
  return shown.length > 60 ? `${shown.slice(0, 57)}..."` : shown;
}

export function exceedsBytes(value: string, max: number): boolean {
  if (value.length > max) return true; // every UTF-16 unit is at least one UTF-8 byte
  if (value.length * 3 <= max) return false; // and at most three
  return new TextEncoder().encode(value).length > max;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function has(obj: Record<string, unknown>, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key) && obj[key] !== undefined && obj[key] !== null;
}

/** Keeps events free of `undefined` keys, so that they serialise and compare cleanly. */
export function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
