import { AdsEvent } from '../../src/ads/event';
import { AdsParseError, MAX_LINE_BYTES, MAX_TARGETS, parseAdsBody, parseAdsLine } from '../../src/ads/parse';
import {
  EXTENDED_DOS,
  EXTENDED_SCANS,
  IDS_LINE,
  JSON_SSHDICT,
  MANUAL_RUN,
  replaceField,
  STANDARD_SSHDICT,
  unterminated,
} from './samples';

const SSH_DETAIL =
  'Attack from a single attacker has been detected. This attack was unsuccessful. Current targets: 1, attempts: 8, upload: 29.09 KiB, maximal upload: 3.66 KiB; total targets: 1, attempts: 33, upload: 90.92 KiB, maximal upload: 3.66 KiB';

const EXPECTED_SSHDICT: AdsEvent = {
  id: '4179523',
  kind: 'ads',
  format: 'standard',
  method: 'SSHDICT',
  typeDesc: 'SSH attack',
  perspective: 'Security Issues',
  priority: 'high',
  detail: SSH_DETAIL,
  source: '203.0.113.45',
  targets: ['198.51.100.10'],
  dataFeed: 'WAN',
  detectedAt: '2025-11-03 15:15:02',
  ports: '22',
  protocol: 'TCP',
};

function parseError(line: string): string {
  try {
    parseAdsLine(line);
  } catch (error) {
    expect(error).toBeInstanceOf(AdsParseError);
    return (error as Error).message;
  }
  throw new Error('expected an AdsParseError');
}

describe('parseAdsLine: reference samples (§2)', () => {
  test('standard SSHDICT line: every field in place, empty fields dropped', () => {
    expect(parseAdsLine(STANDARD_SSHDICT)).toStrictEqual(EXPECTED_SSHDICT);
  });

  test('extended SCANS line from IPv6: subtype at 4, description at 6, three targets', () => {
    expect(parseAdsLine(EXTENDED_SCANS)).toStrictEqual({
      id: '4179524',
      kind: 'ads',
      format: 'extended',
      method: 'SCANS',
      subtype: 'TCPSYN',
      typeDesc: 'Port scanning',
      perspective: 'Security Issues',
      priority: 'medium',
      detail: 'Chaotic TCP SYN scan (attempts with response: 0, attempts without response: 20, targets: 3, port(s): 22).',
      source: '2001:db8:bad::7',
      targets: ['2001:db8:1::10', '2001:db8:1::11', '2001:db8:1::12'],
      dataFeed: 'WAN',
      detectedAt: '2025-11-03 15:15:02',
      ports: '22',
      protocol: 'TCP',
    });
  });

  test('extended DOS line: the victim is the source, the attackers are the targets', () => {
    expect(parseAdsLine(EXTENDED_DOS)).toStrictEqual({
      id: '4179530',
      kind: 'ads',
      format: 'extended',
      method: 'DOS',
      subtype: 'SYNFlood',
      typeDesc: 'Denial of service attack',
      perspective: 'Security Issues',
      priority: 'critical',
      detail:
        'A high amount of unfinished one-way connections (packets: 100, protocol: 6, port(s): 443, service: https), potential attackers: 3).',
      source: '198.51.100.20',
      targets: ['203.0.113.1', '203.0.113.2', '203.0.113.3'],
      dataFeed: 'WAN',
      detectedAt: '2025-11-03 15:20:01',
      ports: '443',
      protocol: 'TCP',
    });
  });

  test('IDS line (14 fields): mapped to the IDS reading, Suricata severity 2 = medium', () => {
    expect(parseAdsLine(IDS_LINE)).toStrictEqual({
      id: '88812',
      kind: 'ids',
      format: 'ids',
      method: 'IDS',
      subtype: '2024897',
      typeDesc: 'Attempted Information Leak',
      priority: 'medium',
      detail: 'ET SCAN Suspicious inbound',
      source: '203.0.113.77',
      targets: ['198.51.100.10'],
      dataFeed: '192.0.2.5 eth2',
      detectedAt: '2025-11-03 15:21:00',
      ports: '80',
      protocol: 'TCP',
    });
  });

  test('JSON line (ADS ≥ 12.5): ADS key names mapped, empty userIdentity dropped', () => {
    const { ports: _ports, protocol: _protocol, ...withoutPorts } = EXPECTED_SSHDICT; // not in the JSON sample
    expect(parseAdsLine(JSON_SSHDICT)).toStrictEqual({
      ...withoutPorts,
      format: 'json',
      detail: 'Attack from a single attacker has been detected. …',
    });
  });

  test('manual "Initiate response" run: perspective and priority are undefined, not guessed', () => {
    const event = parseAdsLine(MANUAL_RUN);
    expect(event.priority).toBeUndefined();
    expect(event.perspective).toBeUndefined();
    const { priority: _priority, perspective: _perspective, ...unrated } = EXPECTED_SSHDICT;
    expect(event).toStrictEqual(unrated);
  });
});

describe('parseAdsLine: line handling (§7 pitfalls)', () => {
  test('trailing-space trap: a standard line whose last field is " " stays 15 fields, never IDS', () => {
    expect(STANDARD_SSHDICT.endsWith('\t \n')).toBe(true);
    const event = parseAdsLine(STANDARD_SSHDICT);
    expect(event.kind).toBe('ads');
    expect(event.format).toBe('standard');
    expect(event.userIdentity).toBeUndefined();
  });

  test('the same line after rstrip() (14 fields) is rejected with a hint, not parsed as IDS', () => {
    const stripped = STANDARD_SSHDICT.trimEnd();
    expect(stripped.split('\t')).toHaveLength(14);
    const message = parseError(stripped);
    expect(message).toMatch(/^ids line \(14 fields\), event 4179523: field 3 \(srcIp\) is "SSHDICT"; expected an IP address/);
    expect(message).toMatch(/looks like a 15-field standard ADS line whose trailing empty field was stripped/);
  });

  test('terminator: "\\n", "\\r\\n" and none give the same event', () => {
    const body = unterminated(STANDARD_SSHDICT);
    expect(parseAdsLine(`${body}\r\n`)).toStrictEqual(EXPECTED_SSHDICT);
    expect(parseAdsLine(body)).toStrictEqual(EXPECTED_SSHDICT);
  });

  test('a user identity in the last field is kept', () => {
    const line = replaceField(STANDARD_SSHDICT, { 14: 'CORP\\jdoe' });
    expect(parseAdsLine(line).userIdentity).toBe('CORP\\jdoe');
  });

  test('fields are trimmed, and spaces inside a field are kept', () => {
    const line = replaceField(STANDARD_SSHDICT, { 4: '  SSH  attack  ', 13: ' WAN ' });
    const event = parseAdsLine(line);
    expect(event.typeDesc).toBe('SSH  attack');
    expect(event.dataFeed).toBe('WAN');
  });

  test('adjacent empty fields are not collapsed (bash IFS trap)', () => {
    const line = replaceField(STANDARD_SSHDICT, { 8: ' ', 9: ' ' });
    const event = parseAdsLine(line);
    expect(event.ports).toBeUndefined();
    expect(event.protocol).toBeUndefined();
    expect(event.source).toBe('203.0.113.45');
  });

  test.each([
    ['Critical', 'critical'],
    ['HIGH', 'high'],
    ['medium', 'medium'],
    ['Low', 'low'],
    ['Informational', 'info'],
    ['INFORMATION', 'info'],
    ['Info', 'info'],
    ['5', 'critical'],
  ])('priority %p reads as %p', (written, expected) => {
    expect(parseAdsLine(replaceField(STANDARD_SSHDICT, { 6: written })).priority).toBe(expected);
  });

  test('targets may be empty; ", " and "," separators both split', () => {
    expect(parseAdsLine(replaceField(STANDARD_SSHDICT, { 12: ' ' })).targets).toEqual([]);
    expect(parseAdsLine(replaceField(STANDARD_SSHDICT, { 12: '198.51.100.1,198.51.100.2, 2001:db8::1' })).targets).toEqual([
      '198.51.100.1',
      '198.51.100.2',
      '2001:db8::1',
    ]);
  });

  test(`exactly ${MAX_TARGETS} targets are accepted`, () => {
    const targets = Array.from({ length: MAX_TARGETS }, (_, i) => `198.51.${Math.floor(i / 250)}.${(i % 250) + 1}`);
    expect(parseAdsLine(replaceField(STANDARD_SSHDICT, { 12: targets.join(', ') })).targets).toHaveLength(MAX_TARGETS);
  });
});

describe('parseAdsLine: rejected lines, with reasons', () => {
  test.each<[string, string, RegExp]>([
    ['16 fields', `${unterminated(STANDARD_SSHDICT)}\textra\n`, /unexpected field count 16: expected 14 \(IDS\), 15 \(standard\) or 17 \(extended\)/],
    ['18 fields', `${unterminated(EXTENDED_SCANS)}\textra`, /unexpected field count 18/],
    ['a CSV line', '4179523,2025-11-03,SSHDICT,203.0.113.45', /unexpected field count 1/],
    ['non-integer id', replaceField(STANDARD_SSHDICT, { 0: '41795x3' }), /^standard line \(15 fields\): field 0 \(id\) is "41795x3"; expected an integer event ID/],
    ['empty id', replaceField(STANDARD_SSHDICT, { 0: ' ' }), /field 0 \(id\) is empty; expected an integer event ID/],
    ['lower-case method', replaceField(STANDARD_SSHDICT, { 3: 'sshdict' }), /event 4179523: field 3 \(method\) is "sshdict"; expected a method code/],
    ['method with spaces', replaceField(STANDARD_SSHDICT, { 3: 'SSH attack' }), /field 3 \(method\) is "SSH attack"/],
    ['source not an IP', replaceField(STANDARD_SSHDICT, { 10: 'WAN' }), /field 10 \(source\) is "WAN"; expected an IP address/],
    ['empty source', replaceField(STANDARD_SSHDICT, { 10: ' ' }), /field 10 \(source\) is empty; expected an IP address/],
    ['source with leading zeros', replaceField(STANDARD_SSHDICT, { 10: '010.1.1.1' }), /field 10 \(source\) is "010.1.1.1"/],
    ['source as a CIDR', replaceField(STANDARD_SSHDICT, { 10: '203.0.113.0/24' }), /field 10 \(source\) is "203.0.113.0\/24"/],
    ['source with a zone id', replaceField(STANDARD_SSHDICT, { 10: 'fe80::1%eth0' }), /field 10 \(source\) is "fe80::1%eth0"/],
    ['a bad target', replaceField(STANDARD_SSHDICT, { 12: '198.51.100.10, host.example' }), /field 12 \(targets\) contains "host.example", which is not an IP address/],
    ['unknown priority', replaceField(STANDARD_SSHDICT, { 6: 'Urgent' }), /field 6 \(priority\) is "Urgent"; expected a priority/],
    ['priority out of range', replaceField(STANDARD_SSHDICT, { 6: '6' }), /field 6 \(priority\) is "6"/],
    ['extended layout shifted by one', replaceField(EXTENDED_SCANS, { 12: 'WAN' }), /^extended line \(17 fields\), event 4179524: field 12 \(source\) is "WAN"/],
    ['IDS with a bad destination', replaceField(IDS_LINE, { 5: 'x' }), /^ids line \(14 fields\), event 88812: field 5 \(dstIp\) is "x"/],
    ['IDS with a bad port', replaceField(IDS_LINE, { 6: 'http' }), /field 6 \(dstPort\) is "http"; expected a port number/],
    ['IDS with an unknown severity', replaceField(IDS_LINE, { 13: '9' }), /field 13 \(severity\) is "9"/],
    ['an empty line', '\n', /line is empty/],
    ['a line break inside', `${unterminated(STANDARD_SSHDICT)}\n${STANDARD_SSHDICT}`, /line contains a line break/],
    ['broken JSON', '{"id": "1", ', /invalid JSON/],
    ['JSON without a source', '{"id":"1","type":"SSHDICT","severity":"High"}', /^JSON event 1: "source" is empty; expected an IP address/],
    ['JSON with both type and method', '{"id":"1","type":"SSHDICT","method":"SCANS","source":"203.0.113.1"}', /give only one of "method", "type"/],
    ['JSON with an object value', '{"id":"1","type":"SSHDICT","source":"203.0.113.1","detail":{"x":1}}', /"detail" must be a string or a number/],
    ['JSON targets with a number', '{"id":"1","type":"SSHDICT","source":"203.0.113.1","targets":["203.0.113.2",7]}', /"targets"\[1\] must be a string/],
  ])('%s', (_name, line, reason) => {
    expect(parseError(line)).toMatch(reason);
  });

  test(`a line longer than ${MAX_LINE_BYTES} bytes is rejected, one at the limit is not`, () => {
    const fill = (detail: string) => replaceField(STANDARD_SSHDICT, { 7: detail });
    const base = Buffer.byteLength(unterminated(fill('')));
    expect(parseAdsLine(fill('x'.repeat(MAX_LINE_BYTES - base))).detail).toHaveLength(MAX_LINE_BYTES - base);
    expect(parseError(fill('x'.repeat(MAX_LINE_BYTES - base + 1)))).toMatch(/longer than 65536 bytes/);
    // Counted in UTF-8 bytes, not characters: 'é' is 2 bytes.
    expect(parseError(fill('é'.repeat(Math.ceil((MAX_LINE_BYTES - base + 1) / 2))))).toMatch(/longer than 65536 bytes/);
  });

  test(`more than ${MAX_TARGETS} targets are rejected`, () => {
    const targets = Array.from({ length: MAX_TARGETS + 1 }, (_, i) => `198.51.${Math.floor(i / 250)}.${(i % 250) + 1}`);
    expect(parseError(replaceField(STANDARD_SSHDICT, { 12: targets.join(', ') }))).toMatch(/lists 1001 targets; at most 1000/);
  });

  test('a non-string line is rejected', () => {
    expect(parseError(42 as unknown as string)).toMatch(/must be a string/);
  });
});

describe('parseAdsLine: JSON value types', () => {
  test('numbers for id and severity, an array of targets, IDS JSON told apart by srcIp', () => {
    const ads = parseAdsLine('{"id":4179523,"type":"DOS","severity":5,"source":"198.51.100.20","targets":["203.0.113.1"," 203.0.113.2 "]}');
    expect(ads).toStrictEqual({
      id: '4179523',
      kind: 'ads',
      format: 'json',
      method: 'DOS',
      priority: 'critical',
      source: '198.51.100.20',
      targets: ['203.0.113.1', '203.0.113.2'],
    });
    const ids = parseAdsLine(
      '{"id":"88812","firstSeen":"2025-11-03 15:21:00","category":"Attempted Information Leak","severity":1,"srcIp":"203.0.113.77","dstIp":"198.51.100.10","signatureName":"ET SCAN","logSourceIp":"192.0.2.5","logSourceInterface":"eth2"}',
    );
    expect(ids).toStrictEqual({
      id: '88812',
      kind: 'ids',
      format: 'json-ids',
      method: 'IDS',
      typeDesc: 'Attempted Information Leak',
      priority: 'high',
      detail: 'ET SCAN',
      source: '203.0.113.77',
      targets: ['198.51.100.10'],
      dataFeed: '192.0.2.5 eth2',
      detectedAt: '2025-11-03 15:21:00',
    });
  });

  test('null values count as absent; unknown keys are ignored', () => {
    const event = parseAdsLine('{"id":"7","type":"SCANS","severity":"Low","source":"203.0.113.9","targets":null,"detail":null,"future":{"a":1}}');
    expect(event).toStrictEqual({ id: '7', kind: 'ads', format: 'json', method: 'SCANS', priority: 'low', source: '203.0.113.9', targets: [] });
  });
});

describe('parseAdsBody', () => {
  const plain = {
    id: '1001',
    method: 'SSHDICT',
    priority: 'High',
    source: '203.0.113.9',
    targets: '198.51.100.1, 198.51.100.2',
    detail: 'manual test',
    perspective: 'Security Issues',
  };
  const plainEvent: AdsEvent = {
    id: '1001',
    kind: 'ads',
    format: 'object',
    method: 'SSHDICT',
    priority: 'high',
    source: '203.0.113.9',
    targets: ['198.51.100.1', '198.51.100.2'],
    detail: 'manual test',
    perspective: 'Security Issues',
  };

  test('(a) one object in our plain format', () => {
    expect(parseAdsBody(plain)).toStrictEqual({ events: [plainEvent], errors: [] });
  });

  test('(a) the aliases type/severity and an array of targets read the same', () => {
    const { method: _m, priority: _p, ...rest } = plain;
    const aliased = { ...rest, type: 'SSHDICT', severity: 'HIGH', targets: ['198.51.100.1', '198.51.100.2'] };
    expect(parseAdsBody(aliased)).toStrictEqual({ events: [plainEvent], errors: [] });
  });

  test('(a) a bad object is reported, not thrown', () => {
    expect(parseAdsBody({ ...plain, source: 'nope' })).toStrictEqual({
      events: [],
      errors: [{ index: 0, message: 'JSON event 1001: "source" is "nope"; expected an IP address' }],
    });
  });

  test('(b) an array of objects and raw lines; a bad item does not stop the others', () => {
    const result = parseAdsBody([plain, unterminated(EXTENDED_DOS), 'garbage', 17, IDS_LINE]);
    expect(result.events.map((e) => [e.id, e.format])).toEqual([
      ['1001', 'object'],
      ['4179530', 'extended'],
      ['88812', 'ids'],
    ]);
    expect(result.errors).toEqual([
      { index: 2, message: expect.stringMatching(/unexpected field count 1/) },
      { index: 3, message: 'each item must be an event object or a raw ADS line' },
    ]);
  });

  test('(c) the forwarder format: raw lines, blank ones skipped, indices kept', () => {
    const body = {
      lines: [unterminated(STANDARD_SSHDICT), '', unterminated(JSON_SSHDICT), { id: '1' }, 'x\ty'],
      forwarder: { version: '1', host: 'ads.example' },
    };
    const result = parseAdsBody(body);
    expect(result.events).toStrictEqual([EXPECTED_SSHDICT, parseAdsLine(JSON_SSHDICT)]);
    expect(result.errors).toEqual([
      { index: 3, message: 'each line must be a string' },
      { index: 4, message: expect.stringMatching(/unexpected field count 2/) },
    ]);
  });

  test('(d) a text body: CRLF or LF lines, blank lines skipped, index = line number', () => {
    const text = `${unterminated(STANDARD_SSHDICT)}\r\n\r\n${unterminated(EXTENDED_SCANS)}\nnot an event\n${IDS_LINE}`;
    const result = parseAdsBody(text);
    expect(result.events.map((e) => e.id)).toEqual(['4179523', '4179524', '88812']);
    expect(result.events[0]).toStrictEqual(EXPECTED_SSHDICT);
    expect(result.errors).toEqual([{ index: 3, message: expect.stringMatching(/unexpected field count 1/) }]);
  });

  test('an empty body yields nothing', () => {
    expect(parseAdsBody('')).toStrictEqual({ events: [], errors: [] });
    expect(parseAdsBody([])).toStrictEqual({ events: [], errors: [] });
    expect(parseAdsBody({ lines: [] })).toStrictEqual({ events: [], errors: [] });
  });

  test.each<[string, unknown, RegExp]>([
    ['a number', 42, /body must be an event object/],
    ['null', null, /body must be an event object/],
    ['"lines" that is not an array', { lines: 'x' }, /"lines" must be an array/],
  ])('a body that is %s throws AdsParseError', (_name, body, reason) => {
    expect(() => parseAdsBody(body)).toThrow(AdsParseError);
    expect(() => parseAdsBody(body)).toThrow(reason);
  });
});
