/**
 * Flowmon ADS events as ADS sends them by syslog in CEF (reference: shared/reference/flowmon-ads.md §5.1),
 * turned into the same AdsEvent the webhook's parsers produce, so that the same intake and safety policy
 * decide what is blocked. Pure: no I/O. The syslog header in front of the CEF text is
 * src/syslog/message.ts's business.
 *
 *   CEF:0|Flowmon Networks|Flowmon ADS <edition>|<version>|<METHOD>|<method name>|<severity>|<extension>
 *
 * Extension values are not quoted and ADS does not escape "=" in them (§5.1), so a free-text value
 * (`msg`) can carry something that reads like another key. The keys that decide what is blocked are
 * therefore accepted only once (a second `src=` is refused, not "last one wins"), and the custom keys
 * only with their label (`cs4` is a target list only beside `cs4Label=dstIPv4list`). Whatever gets
 * through is an address ADS named in a message from an allowed sender; the safety policy still applies.
 */
import { createHash } from 'node:crypto';
import { canonicalIp } from '../policy/ip-policy';
import { AdsEvent, parsePriority, Priority } from './event';
import { AdsParseError, EVENT_ID, exceedsBytes, isHostAddress, MAX_LINE_BYTES, MAX_TARGETS, METHOD_CODE, show, withoutUndefined } from './parse';

/** Custom keys ADS labels (§5.1): key → the label that gives it the meaning we use. */
const LABELLED = {
  srcIPv6: ['c6a2', 'srcipv6'],
  dstIPv6: ['c6a3', 'dstipv6'],
  dstIPv4list: ['cs4', 'dstipv4list'],
  dstIPv6list: ['cs6', 'dstipv6list'],
  eventId: ['cn1', 'eventid'],
  dataFeed: ['cn2', 'datafeedid'],
} as const;

/** Keys whose value decides what is blocked or how it deduplicates: each may appear at most once. */
const SINGLE = new Set(['src', 'dst', 'start', ...Object.values(LABELLED).flatMap(([key]) => [key, `${key}Label`])]);

/** A key starts after whitespace: letters, digits, "_" (CEF). An escaped "\=" never ends a key. */
const KEY = /(?:^|\s)([A-Za-z][A-Za-z0-9_]{0,63})=/g;

/** CEF severity 0..10 (ADS sends 2, 4, 6, 8, 10; the mapping is inferred from the five values, §5.1). */
function severityPriority(text: string): Priority | undefined {
  if (/^\d{1,2}$/.test(text)) {
    const n = Number(text);
    if (n > 10) return undefined;
    return n >= 9 ? 'critical' : n >= 7 ? 'high' : n >= 5 ? 'medium' : n >= 3 ? 'low' : 'info';
  }
  const name = text.toLowerCase();
  if (name === 'very-high') return 'critical';
  return parsePriority(name);
}

/** Parses the CEF text of one ADS syslog message (from "CEF:" on). Throws AdsParseError with the reason. */
export function parseAdsCef(text: string): AdsEvent {
  if (typeof text !== 'string') throw new AdsParseError('a CEF message must be a string');
  if (exceedsBytes(text, MAX_LINE_BYTES)) throw new AdsParseError(`CEF message is longer than ${MAX_LINE_BYTES} bytes`);
  if (!/^CEF:\d{1,3}\|/.test(text)) throw new AdsParseError('not a CEF message: expected "CEF:<version>|..."');
  if (/[\r\n\0]/.test(text)) throw new AdsParseError('CEF message contains a line break or NUL: one message per event');
  const { header, extension } = splitHeader(text);
  const [, vendor, product, , method, name, severity] = header;
  if (!/\bADS\b/.test(product)) throw new AdsParseError(`not a Flowmon ADS message: device ${show(`${vendor} ${product}`)}`);
  const context = `CEF ${show(method)}`;
  if (!METHOD_CODE.test(method)) throw fail(context, `signature ${show(method)} is not a method code like SSHDICT (A-Z, 0-9, _)`);
  const priority = severity.trim() === '' || severity.toLowerCase() === 'unknown' ? undefined : severityPriority(severity.trim());
  if (priority === undefined && severity.trim() !== '' && severity.toLowerCase() !== 'unknown') {
    throw fail(context, `severity ${show(severity)} is neither 0..10 nor a priority name`);
  }
  const ext = parseExtension(extension, context);

  const src = ext.get('src');
  const src6 = labelled(ext, 'srcIPv6');
  if (src !== undefined && src6 !== undefined) throw fail(context, 'both src and an IPv6 source (c6a2) are given: ambiguous');
  const source = src ?? src6;
  if (source === undefined) throw fail(context, 'no source address (src or c6a2 with c6a2Label=srcIPv6)');
  if (!isHostAddress(source)) throw fail(context, `source ${show(source)} is not an IP address`);

  const targets = [ext.get('dst'), labelled(ext, 'dstIPv6'), labelled(ext, 'dstIPv4list'), labelled(ext, 'dstIPv6list')]
    .flatMap((v) => (v ?? '').split(','))
    .map((t) => t.trim())
    .filter((t) => t !== '');
  if (targets.length > MAX_TARGETS) throw fail(context, `lists ${targets.length} targets; at most ${MAX_TARGETS} are accepted`);
  const bad = targets.find((t) => !isHostAddress(t));
  if (bad !== undefined) throw fail(context, `target ${show(bad)} is not an IP address`);

  const start = ext.get('start');
  const givenId = labelled(ext, 'eventId');
  if (givenId !== undefined && !EVENT_ID.test(givenId)) throw fail(context, `event id (cn1) ${show(givenId)} is not an integer`);
  const detail = ext.get('msg');
  return withoutUndefined<AdsEvent>({
    id: givenId ?? contentId(method, source, start, targets, detail),
    kind: 'ads',
    format: 'cef',
    method,
    typeDesc: name.trim() || undefined,
    priority,
    detail,
    source,
    targets,
    dataFeed: labelled(ext, 'dataFeed'),
    detectedAt: start,
  });
}

/**
 * The id an event without an ADS event id deduplicates on. One ADS event sent as "one message per
 * target" arrives as several messages that differ only in their targets, plus one listing the remaining
 * targets: they must share an id, or the attacker's block would count each as a repeat (and escalate).
 * So the id is method, source and start time; the targets and the text join in only when the start time
 * is missing, to keep distinct events apart.
 */
export function contentId(method: string, source: string, start: string | undefined, targets: readonly string[], detail: string | undefined): string {
  const canonical = (ip: string) => canonicalIp(ip) ?? ip;
  const parts = start !== undefined ? [method, canonical(source), start] : [method, canonical(source), '', [...targets].map(canonical).sort(), detail ?? ''];
  return `cef-${createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 24)}`;
}

/** The seven header fields ("\|" and "\\" escaped) and the raw extension. */
function splitHeader(text: string): { header: string[]; extension: string } {
  const header: string[] = [];
  let field = '';
  let i = 0;
  for (; i < text.length && header.length < 7; i++) {
    const c = text[i];
    if (c === '\\' && (text[i + 1] === '|' || text[i + 1] === '\\')) {
      field += text[++i];
    } else if (c === '|') {
      header.push(field);
      field = '';
    } else {
      field += c;
    }
  }
  if (header.length < 7) throw new AdsParseError(`CEF header has ${header.length + 1} of its 8 fields`);
  return { header, extension: text.slice(i) };
}

/** key → unescaped, non-empty value; keys in SINGLE may appear once, other keys keep their first value. */
function parseExtension(extension: string, context: string): Map<string, string> {
  const found = [...extension.matchAll(KEY)];
  const ext = new Map<string, string>();
  if (found.length === 0 && extension.trim() !== '') throw fail(context, 'extension has no key=value pairs');
  found.forEach((m, index) => {
    const key = m[1];
    const valueStart = (m.index ?? 0) + m[0].length;
    const valueEnd = index + 1 < found.length ? (found[index + 1].index ?? extension.length) : extension.length;
    if (ext.has(key)) {
      if (SINGLE.has(key)) throw fail(context, `key ${key} appears twice: ambiguous (text in a free-text field that looks like a key?)`);
      return;
    }
    const value = unescape(extension.slice(valueStart, valueEnd).trim());
    if (value !== '') ext.set(key, value); // "key=" with nothing is the same as no key
  });
  return ext;
}

function unescape(value: string): string {
  return value.replace(/\\([\\=nr])/g, (_m, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c));
}

/** The value of a labelled custom key, only when its label says what we take it for. */
function labelled(ext: Map<string, string>, meaning: keyof typeof LABELLED): string | undefined {
  const [key, label] = LABELLED[meaning];
  const value = ext.get(key);
  if (value === undefined) return undefined;
  return ext.get(`${key}Label`)?.toLowerCase() === label ? value : undefined;
}

function fail(context: string, message: string): AdsParseError {
  return new AdsParseError(`${context}: ${message}`);
}
