/** Human output of the CLI: padded columns and key/value blocks, no dependency. */
import type { BlockState, BlockStatus } from '../../workflows/messages';

/** Columns padded to their widest cell; the header is the column names in upper case; empty cells show "-". */
export function table<T extends object>(rows: readonly T[], columns: readonly (keyof T & string)[]): string {
  const cell = (r: T, c: keyof T & string) => (r[c] === undefined || r[c] === null || r[c] === '' ? '-' : String(r[c]));
  const grid = [columns.map((c) => c.toUpperCase()), ...rows.map((r) => columns.map((c) => cell(r, c)))];
  const widths = columns.map((_, i) => Math.max(...grid.map((line) => line[i].length)));
  return grid.map((line) => line.map((text, i) => (i === line.length - 1 ? text : text.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}

/** `key:  value` lines, keys padded; empty values are left out. */
export function keyValues(pairs: readonly [string, unknown][]): string {
  const shown = pairs.filter(([, v]) => v !== undefined && v !== null && v !== '');
  const width = Math.max(0, ...shown.map(([k]) => k.length + 1));
  return shown.map(([k, v]) => `${`${k}:`.padEnd(width)}  ${String(v)}`).join('\n') + '\n';
}

/** An ISO time with how far away it is, e.g. "2030-01-01T00:00:00.000Z (in 5h 59m)". */
export function when(iso: string | undefined, now = Date.now()): string | undefined {
  if (!iso) return undefined;
  const ms = Date.parse(iso) - now;
  if (!Number.isFinite(ms)) return iso;
  return `${iso} (${ms >= 0 ? `in ${span(ms)}` : `${span(-ms)} ago`})`;
}

function span(ms: number): string {
  const s = Math.round(ms / 1000);
  const parts: [number, string][] = [
    [Math.floor(s / 86400), 'd'],
    [Math.floor((s % 86400) / 3600), 'h'],
    [Math.floor((s % 3600) / 60), 'm'],
    [s % 60, 's'],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  if (first === -1) return '0s';
  return parts
    .slice(first, first + 2)
    .filter(([n]) => n > 0)
    .map(([n, u]) => `${n}${u}`)
    .join(' ');
}

/** States in which a block's expiry is history, not a promise (and a cancel requested counts too). */
const ENDING: readonly BlockState[] = ['releasing', 'expired', 'cancelled', 'evicted', 'rejected'];

/** `show`: one block as key/value lines; an ended (or ending) block shows when it ended, not "expires in 6h". */
export function blockDetails(s: BlockStatus, now = Date.now()): string {
  const ending = ENDING.includes(s.state) || !!s.cancelledBy;
  const state = s.state !== 'cancelled' && s.cancelledBy && !ENDING.includes(s.state) ? `${s.state} (unblock requested, being lifted)` : s.state;
  return keyValues([
    ['ip', s.ip],
    ['target', s.target],
    ['group', s.group],
    ['state', state],
    ['reason', s.reason],
    ['actor', s.actor],
    ['created', s.createdAt],
    ['blocked', s.blockedAt],
    ending ? ['was to expire', s.state === 'expired' ? undefined : s.expiresAt] : ['expires', when(s.expiresAt, now)],
    ['ended', when(s.endedAt, now)],
    ['cancelled by', s.cancelledBy ? `${s.cancelledBy.actor} (${s.cancelledBy.reason}) at ${s.cancelledBy.at}` : undefined],
    ['evicted', s.evictedReason],
    ['last error', s.lastError],
    ['events', s.eventCount],
  ]);
}
