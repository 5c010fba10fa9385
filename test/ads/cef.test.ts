/**
 * ADS syslog CEF → AdsEvent: the reference's 13.0 lines, both syslog headers, severities, the stable
 * content id of events without an ADS id, and hostile input (duplicated or injected keys, garbage).
 */
import fc from 'fast-check';
import { contentId, parseAdsCef } from '../../src/ads/cef';
import { decide, DEFAULT_INTAKE_POLICY } from '../../src/ads/decision';
import { AdsParseError } from '../../src/ads/parse';
import { parseSyslogMessage } from '../../src/syslog/message';
import { CEF_SCANS_ONE_TARGET, CEF_SCANS_REMAINING, CEF_SSHDICT_V4_LIST, CEF_SSHDICT_V6 } from './samples';

/** Header + CEF, as the listener does it. */
const parse = (line: string) => {
  const m = parseSyslogMessage(line);
  if (!m.cef) throw new AdsParseError('no CEF');
  return parseAdsCef(m.cef);
};
const cefOf = (line: string) => line.slice(line.indexOf('CEF:'));

describe('the reference 13.0 lines', () => {
  test('SSHDICT with an IPv4 target list: source, ten targets, high, start time, data feed', () => {
    const e = parse(CEF_SSHDICT_V4_LIST);
    expect(e).toEqual({
      id: expect.stringMatching(/^cef-[0-9a-f]{24}$/),
      kind: 'ads',
      format: 'cef',
      method: 'SSHDICT',
      typeDesc: 'SSH attack',
      priority: 'high',
      detail: expect.stringMatching(/^Distributed attack has been detected\. .* maximal upload: 97\.66 KiB\.$/),
      source: '10.0.57.1',
      targets: Array.from({ length: 10 }, (_, i) => `192.168.57.${i + 2}`),
      dataFeed: '1',
      detectedAt: 'Nov 03 2025 15:10:43',
    });
    expect(decide(e, DEFAULT_INTAKE_POLICY)).toEqual({ action: 'block', ips: ['10.0.57.1'], role: 'source' });
  });

  test('SCANS, one message per target: the single target, medium', () => {
    const e = parse(CEF_SCANS_ONE_TARGET);
    expect(e).toMatchObject({ method: 'SCANS', typeDesc: 'Port scanning', priority: 'medium', source: '10.0.21.1', targets: ['192.168.21.2'] });
    expect(e.detail).toBe('ARP scan (attempts with response: 0, attempts without response: 20, targets: 10).');
  });

  test('IPv6 source and target keys (c6a2 / c6a3 with their labels)', () => {
    expect(parse(CEF_SSHDICT_V6)).toMatchObject({ method: 'SSHDICT', source: 'fe80::a1', targets: ['fe80::2'], detail: 'Distributed attack has been detected. …' });
  });

  test('the messages of one event (single targets and the remaining ones) share one id; another start time does not', () => {
    const one = parse(CEF_SCANS_ONE_TARGET);
    const other = parse(CEF_SCANS_ONE_TARGET.replace('dst=192.168.21.2', 'dst=192.168.21.3'));
    const remaining = parse(CEF_SCANS_REMAINING);
    expect(remaining.targets).toHaveLength(5);
    expect(new Set([one.id, other.id, remaining.id]).size).toBe(1);
    expect(parse(CEF_SCANS_ONE_TARGET.replace('start=Nov 03 2025 15:13:04', 'start=Nov 03 2025 15:14:04')).id).not.toBe(one.id);
    expect(parse(CEF_SCANS_ONE_TARGET.replace('src=10.0.21.1', 'src=10.0.21.9')).id).not.toBe(one.id);
    expect(parse(CEF_SCANS_ONE_TARGET.replace('|SCANS|', '|SSHDICT|')).id).not.toBe(one.id);
  });

  test('the id is stable across processes (a fixed function of the content) and spelling of the source', () => {
    expect(contentId('SCANS', '2001:db8::7', 'Nov 03 2025 15:13:04', [], undefined)).toBe(contentId('SCANS', '2001:DB8:0::7', 'Nov 03 2025 15:13:04', ['x'], 'y'));
    expect(contentId('SCANS', '10.0.21.1', 'Nov 03 2025 15:13:04', [], undefined)).toBe('cef-' + require('node:crypto').createHash('sha256').update('["SCANS","10.0.21.1","Nov 03 2025 15:13:04"]').digest('hex').slice(0, 24));
  });

  test('without a start time, targets and text keep distinct events apart', () => {
    const noStart = CEF_SCANS_ONE_TARGET.replace('start=Nov 03 2025 15:13:04 ', '');
    expect(parse(noStart).id).not.toBe(parse(noStart.replace('dst=192.168.21.2', 'dst=192.168.21.3')).id);
    expect(parse(noStart).id).toBe(parse(noStart).id);
  });

  test('an ADS event id (cn1, older versions) is used as the id, so webhook and syslog deliveries dedup together', () => {
    expect(parse(CEF_SCANS_ONE_TARGET.replace('cn2=1', 'cn1=4179 cn1Label=EventID cn2=1')).id).toBe('4179');
    expect(() => parse(CEF_SCANS_ONE_TARGET.replace('cn2=1', 'cn1=41x9 cn1Label=EventID cn2=1'))).toThrow(/event id/);
  });
});

describe('syslog headers', () => {
  const cef = cefOf(CEF_SCANS_ONE_TARGET);
  test.each([
    ['RFC 3164 with <PRI>', `<134>Nov  3 15:13:07 ads-probe ADS[208086]: ${cef}`, 134, 'ads-probe', 'ADS'],
    ['RFC 3164 without a host name', `<134>Nov  3 15:13:07 ADS[208086]: ${cef}`, 134, undefined, 'ADS'],
    ['RFC 3164 without <PRI> (sample files)', CEF_SCANS_ONE_TARGET, undefined, 'localhost', 'ADS'],
    ['RFC 5424 without structured data', `<134>1 2025-11-03T15:13:07.123+01:00 ads-probe ADS 208086 - - ${cef}`, 134, 'ads-probe', 'ADS'],
    ['RFC 5424 with structured data and a BOM', `<134>1 2025-11-03T15:13:07Z ads-probe ADS 208086 ID47 [origin ip="192.0.2.8" x="a\\]b"] \uFEFF${cef}`, 134, 'ads-probe', 'ADS'],
    ['bare CEF', cef, undefined, undefined, undefined],
  ])('%s', (_what, line, pri, hostname, appName) => {
    const m = parseSyslogMessage(line + '\r\n');
    expect(m).toEqual(JSON.parse(JSON.stringify({ pri, hostname, appName, cef })));
    expect(parseAdsCef(m.cef!).targets).toEqual(['192.168.21.2']);
  });

  test('a message without CEF, or with the marker far behind a long header, has no CEF', () => {
    expect(parseSyslogMessage('<13>Nov  3 15:13:07 host sshd[1]: Accepted password for root').cef).toBeUndefined();
    expect(parseSyslogMessage(`<13>${'x'.repeat(600)} ${cef}`).cef).toBeUndefined();
  });
});

describe('CEF fields', () => {
  const withSeverity = (s: string) => cefOf(CEF_SCANS_ONE_TARGET).replace('|Port scanning|6|', `|Port scanning|${s}|`);
  test.each([
    ['10', 'critical'], ['9', 'critical'], ['8', 'high'], ['6', 'medium'], ['4', 'low'], ['2', 'info'], ['0', 'info'],
    ['High', 'high'], ['Very-High', 'critical'], ['Low', 'low'], ['medium', 'medium'],
  ])('severity %s → %s', (severity, priority) => {
    expect(parseAdsCef(withSeverity(severity)).priority).toBe(priority);
  });

  test('an empty or Unknown severity leaves the priority unknown (the intake ignores such events)', () => {
    expect(parseAdsCef(withSeverity('')).priority).toBeUndefined();
    expect(parseAdsCef(withSeverity('Unknown')).priority).toBeUndefined();
  });

  test.each(['11', '-1', 'urgent'])('severity %s is refused', (severity) => {
    expect(() => parseAdsCef(withSeverity(severity))).toThrow(/severity/);
  });

  test('escaped pipes in the header and escaped "=" / "\\" in values are read as text', () => {
    const e = parseAdsCef(cefOf(CEF_SCANS_ONE_TARGET).replace('|Port scanning|', '|Port \\| scanning|').replace('msg=ARP scan', 'msg=a\\=b c\\\\d ARP scan'));
    expect(e.typeDesc).toBe('Port | scanning');
    expect(e.detail).toMatch(/^a=b c\\d ARP scan/);
  });

  test('a target list mixes with single targets; unlabelled or mislabelled custom keys are not targets', () => {
    const cef = cefOf(CEF_SCANS_ONE_TARGET);
    expect(parseAdsCef(cef.replace('dst=192.168.21.2', 'dst=192.168.21.2 cs6=2001:db8::1, 2001:db8::2 cs6Label=dstIPv6list')).targets).toEqual(['192.168.21.2', '2001:db8::1', '2001:db8::2']);
    expect(parseAdsCef(cef.replace('dst=192.168.21.2', 'cs4=198.51.100.1')).targets).toEqual([]);
    expect(parseAdsCef(cef.replace('dst=192.168.21.2', 'cs4=198.51.100.1 cs4Label=Something')).targets).toEqual([]);
    expect(parseAdsCef(cef.replace('src=10.0.21.1', 'c6a2=2001:db8::9 c6a2Label=srcIPv6')).source).toBe('2001:db8::9');
  });
});

describe('hostile and malformed CEF is refused with a reason', () => {
  const cef = cefOf(CEF_SCANS_ONE_TARGET);
  test.each([
    ['a second src hidden in the free text', cef.replace('msg=ARP scan', 'msg=ARP scan src=198.51.100.66'), /key src appears twice/],
    ['a second target key hidden in the free text', cef.replace('msg=ARP scan', 'msg=ARP scan dst=198.51.100.66'), /key dst appears twice/],
    ['an IPv6 source beside the IPv4 one', cef.replace(' dst=', ' c6a2=2001:db8::66 c6a2Label=srcIPv6 dst='), /both src and an IPv6 source/],
    ['a second label of a target list', cef.replace('dst=192.168.21.2', 'cs4=198.51.100.1 cs4Label=dstIPv4list cs4Label=x'), /key cs4Label appears twice/],
    ['no source', cef.replace('src=10.0.21.1 ', ''), /no source address/],
    ['a source that is not an address', cef.replace('src=10.0.21.1', 'src=10.0.21.1;rm'), /source "10.0.21.1;rm" is not an IP address/],
    ['a CIDR source', cef.replace('src=10.0.21.1', 'src=10.0.0.0/8'), /not an IP address/],
    ['a target that is not an address', cef.replace('dst=192.168.21.2', 'dst=$(reboot)'), /target "\$\(reboot\)" is not an IP address/],
    ['a method that is not a code', cef.replace('|SCANS|', '|scans; drop|'), /not a method code/],
    ['another product', cef.replace('Flowmon ADS Ultimate', 'FortiGate'), /not a Flowmon ADS message/],
    ['a short header', 'CEF:0|Flowmon Networks|Flowmon ADS|13|SCANS', /CEF header has 5 of its 8 fields/],
    ['no CEF prefix', 'LEEF:1.0|Flowmon|ADS|13|SCANS|', /not a CEF message/],
    ['a line break inside', cef.replace('msg=ARP scan', 'msg=ARP\nscan'), /line break/],
    ['too many targets', cef.replace('dst=192.168.21.2', `cs4=${Array.from({ length: 1001 }, (_, i) => `198.18.${i >> 8}.${i & 255}`).join(', ')} cs4Label=dstIPv4list`), /1001 targets; at most 1000/],
    ['over 64 KiB', cef + ' cs1=' + 'x'.repeat(64 * 1024), /longer than 65536 bytes/],
  ])('%s', (_what, text, reason) => {
    expect(() => parseAdsCef(text)).toThrow(AdsParseError);
    expect(() => parseAdsCef(text)).toThrow(reason);
  });

  test('an injected key whose label swallows the rest of the text is not taken for what it claims', () => {
    const e = parseAdsCef(cef.replace('msg=ARP scan', 'msg=ARP scan c6a2=2001:db8::66 c6a2Label=srcIPv6'));
    expect(e.source).toBe('10.0.21.1');
    expect(e.targets).toEqual(['192.168.21.2']);
  });

  test('anything at all either parses or throws AdsParseError, quickly', () => {
    const start = Date.now();
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ maxLength: 300 }).map((s) => `${cef.slice(0, 80)}${s}`), fc.string({ maxLength: 300 }).map((s) => `${cef} ${s}`)), (text) => {
        try {
          parseAdsCef(text);
        } catch (err) {
          if (!(err instanceof AdsParseError)) throw err;
        }
        parseSyslogMessage(text);
      }),
      { numRuns: 3000 },
    );
    expect(Date.now() - start).toBeLessThan(20_000);
  });
});
