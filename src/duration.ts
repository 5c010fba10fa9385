import ms from 'ms';

/** Durations as operators write them: `90s`, `30m`, `6h`, `2d`, `1.5h`, `500ms`. A bare number is refused (unit ambiguity). */
const DURATION = /^\s*\d+(\.\d+)?\s*(ms|s|sec|secs|seconds?|m|min|mins|minutes?|h|hr|hrs|hours?|d|days?|w|weeks?)\s*$/i;

export function parseDuration(text: string): number {
  const value = DURATION.test(text) ? ms(text as ms.StringValue) : undefined;
  if (value === undefined || !Number.isFinite(value) || value <= 0) {
    throw new Error(`"${text}" is not a duration: use a number with a unit, e.g. 90s, 30m, 6h, 2d`);
  }
  return Math.round(value);
}

export function formatDuration(valueMs: number): string {
  return ms(valueMs, { long: false });
}
