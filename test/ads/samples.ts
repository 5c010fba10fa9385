/**
 * Sample stdin lines, verbatim from shared/reference/flowmon-ads.md §2 (constructed from §1.4,
 * not captured on an appliance). Each keeps its "\n" terminator, as ADS writes it.
 */
export const STANDARD_SSHDICT =
  '4179523\t2025-11-03 15:15:02\t2025-11-03 15:10:43\tSSHDICT\tSSH attack\tSecurity Issues\tHigh\tAttack from a single attacker has been detected. This attack was unsuccessful. Current targets: 1, attempts: 8, upload: 29.09 KiB, maximal upload: 3.66 KiB; total targets: 1, attempts: 33, upload: 90.92 KiB, maximal upload: 3.66 KiB\t22\tTCP\t203.0.113.45\t \t198.51.100.10\tWAN\t \n';

export const EXTENDED_SCANS =
  '4179524\t2025-11-03 15:15:02\t2025-11-03 15:10:43\tSCANS\tTCPSYN\t \tPort scanning\tSecurity Issues\tMedium\tChaotic TCP SYN scan (attempts with response: 0, attempts without response: 20, targets: 3, port(s): 22).\t22\tTCP\t2001:db8:bad::7\t \t2001:db8:1::10, 2001:db8:1::11, 2001:db8:1::12\tWAN\t \n';

export const EXTENDED_DOS =
  '4179530\t2025-11-03 15:20:01\t2025-11-03 15:15:10\tDOS\tSYNFlood\t \tDenial of service attack\tSecurity Issues\tCritical\tA high amount of unfinished one-way connections (packets: 100, protocol: 6, port(s): 443, service: https), potential attackers: 3).\t443\tTCP\t198.51.100.20\t \t203.0.113.1, 203.0.113.2, 203.0.113.3\tWAN\t \n';

export const IDS_LINE =
  '88812\t2025-11-03 15:21:00\t2025-11-03 15:21:05\t203.0.113.77\t51514\t198.51.100.10\t80\tTCP\t2024897\tET SCAN Suspicious inbound\t192.0.2.5\teth2\tAttempted Information Leak\t2\n';

export const JSON_SSHDICT =
  '{"id":"4179523","timestamp":"2025-11-03 15:15:02","type":"SSHDICT","typeDesc":"SSH attack","severity":"High","source":"203.0.113.45","targets":"198.51.100.10","detail":"Attack from a single attacker has been detected. …","perspective":"Security Issues","netFlowSource":"WAN","userIdentity":""}\n';

/** The standard sample as a manual "Initiate response" run: perspective and priority empty (§2). */
export const MANUAL_RUN = replaceField(STANDARD_SSHDICT, { 5: ' ', 6: ' ' });

/** Replaces tab-separated fields by index, keeping the line terminator. */
export function replaceField(line: string, changes: Record<number, string>): string {
  const [body, terminator] = line.endsWith('\n') ? [line.slice(0, -1), '\n'] : [line, ''];
  const fields = body.split('\t');
  for (const [index, value] of Object.entries(changes)) fields[Number(index)] = value;
  return fields.join('\t') + terminator;
}

/** A line without its terminator, as the forwarder posts it. */
export function unterminated(line: string): string {
  return line.replace(/\r?\n$/, '');
}

/**
 * ADS 13.0 syslog (CEF) lines, verbatim from shared/reference/flowmon-ads.md §5.1 (real lines of
 * Progress' sample set; the third one is shortened there with "…"). As in the sample files they carry an
 * RFC 3164 header without <PRI>; on the wire a syslog daemon adds one.
 */
export const CEF_SSHDICT_V4_LIST =
  'Nov  3 15:10:47 localhost ADS[201934]: CEF:0|Flowmon Networks|Flowmon ADS Ultimate|13.00.00|SSHDICT|SSH attack|8|src=10.0.57.1 smac=0c:70:00:00:00:00 start=Nov 03 2025 15:10:43 msg=Distributed attack has been detected. This attack was unsuccessful. Current targets: 0, attempts: 50, upload: 0 B, maximal upload: 97.66 KiB; total targets: 10, attempts: 100, upload: 0 B, maximal upload: 97.66 KiB. cs4=192.168.57.2, 192.168.57.3, 192.168.57.4, 192.168.57.5, 192.168.57.6, 192.168.57.7, 192.168.57.8, 192.168.57.9, 192.168.57.10, 192.168.57.11 cs4Label=dstIPv4list cs2=Default cs2Label=MethodInstanceName cn2=1 cn2Label=DataFeedID cn3=2 cn3Label=PerspectiveID';

/** "Send one message per target" mode: one of the single-target messages of a SCANS event. */
export const CEF_SCANS_ONE_TARGET =
  'Nov  3 15:13:07 localhost ADS[208086]: CEF:0|Flowmon Networks|Flowmon ADS Ultimate|13.00.00|SCANS|Port scanning|6|src=10.0.21.1 smac=0c:70:00:00:00:00 start=Nov 03 2025 15:13:04 msg=ARP scan (attempts with response: 0, attempts without response: 20, targets: 10). dst=192.168.21.2 cs2=Default cs2Label=MethodInstanceName cn2=1 cn2Label=DataFeedID cn3=2 cn3Label=PerspectiveID';

export const CEF_SSHDICT_V6 =
  'Nov  3 15:33:29 localhost ADS[228813]: CEF:0|Flowmon Networks|Flowmon ADS Ultimate|13.00.00|SSHDICT|SSH attack|8|c6a2=fe80::a1 c6a2Label=srcIPv6 smac=0c:70:00:00:00:00 start=Nov 03 2025 15:33:24 msg=Distributed attack has been detected. … c6a3=fe80::2 c6a3Label=dstIPv6 cs2=Default cs2Label=MethodInstanceName cn2=1 cn2Label=DataFeedID cn3=2 cn3Label=PerspectiveID';

/**
 * The same SCANS event's "remaining targets" message (CONSTRUCTED: same header and start, the targets the
 * single messages did not name as a list, as the reference describes the mode).
 */
export const CEF_SCANS_REMAINING = CEF_SCANS_ONE_TARGET.replace(
  'dst=192.168.21.2',
  'cs4=192.168.21.7, 192.168.21.8, 192.168.21.9, 192.168.21.10, 192.168.21.11 cs4Label=dstIPv4list',
);

/** Replaces addresses in a line (e.g. the samples' private ones by documentation ones that may be blocked). */
export function withAddresses(line: string, map: Record<string, string>): string {
  // Whole addresses only: 192.168.57.1 must not match the start of 192.168.57.10.
  return line.replace(/[0-9a-f]*[.:][0-9a-f.:]*[0-9a-f]/gi, (ip) => map[ip] ?? ip);
}
