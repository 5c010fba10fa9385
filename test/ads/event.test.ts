import { parseIdsSeverity, parsePriority, PRIORITIES, priorityRank } from '../../src/ads/event';

describe('parsePriority', () => {
  test.each([
    ['CRITICAL', 'critical'],
    ['Critical', 'critical'],
    ['high', 'high'],
    ['Medium', 'medium'],
    ['LOW', 'low'],
    ['INFO', 'info'],
    ['Information', 'info'],
    ['INFORMATIONAL', 'info'],
    ['  High  ', 'high'],
    ['5', 'critical'],
    ['1', 'info'],
    [5, 'critical'],
    [4, 'high'],
    [3, 'medium'],
    [2, 'low'],
    [1, 'info'],
  ])('%p → %p', (input, expected) => {
    expect(parsePriority(input)).toBe(expected);
  });

  test.each([undefined, '', ' ', 'urgent', 'informative', 'hi', '0', '6', '05', 0, 6, 2.5, NaN, -1, 'constructor', 'toString'])(
    '%p → undefined',
    (input) => {
      expect(parsePriority(input as string | number | undefined)).toBeUndefined();
    },
  );
});

describe('parseIdsSeverity (Suricata: 1 is the most severe)', () => {
  test.each([
    ['1', 'high'],
    [1, 'high'],
    ['2', 'medium'],
    [3, 'low'],
    ['4', 'info'],
    ['High', 'high'],
    ['critical', 'critical'],
  ])('%p → %p', (input, expected) => {
    expect(parseIdsSeverity(input)).toBe(expected);
  });

  test.each([undefined, '', '0', '5', 9, 'urgent'])('%p → undefined', (input) => {
    expect(parseIdsSeverity(input as string | number | undefined)).toBeUndefined();
  });
});

test('priorityRank orders info < low < medium < high < critical', () => {
  expect(PRIORITIES.map(priorityRank)).toEqual([0, 1, 2, 3, 4]);
  expect(priorityRank('critical')).toBeGreaterThan(priorityRank('high'));
  expect(priorityRank('info')).toBeLessThan(priorityRank('low'));
});
