/**
 * One syslog message → its header and the CEF text ADS put in it. ADS's syslog daemon may write an
 * RFC 3164 header (`<PRI>Mmm dd hh:mm:ss host ADS[pid]: CEF:0|...`, as in the reference's samples), an
 * RFC 5424 one (`<PRI>1 <ISO time> host ADS pid - - CEF:0|...`, structured data, BOM) or a relay's
 * template: the CEF text starts at the first "CEF:<n>|" after the header, and the header is read only
 * for the log (which host and program sent it). The header is written by the sender's syslog daemon,
 * not by the traffic ADS describes, so nothing an attacker controls can come before that marker.
 */
export interface SyslogMessage {
  /** Facility × 8 + severity, when the message has a `<PRI>`. */
  pri?: number;
  hostname?: string;
  appName?: string;
  /** From "CEF:" on; undefined when the message carries no CEF. */
  cef?: string;
}

/** A header is short; anything longer before "CEF:" is not what ADS sends. */
const MAX_HEADER = 512;
const CEF_START = /(?:^|[\s\uFEFF:])(CEF:\d{1,3}\|)/;
const PRI = /^<(\d{1,3})>/;
const RFC5424 = /^1 \S+ (\S+) (\S+) /;
const RFC3164 = /^(?:[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}|\d{4}-\d{2}-\d{2}T\S+) (?:(\S+) )?([^\s:[\]]{1,48})(?:\[\d{1,10}\])?:/;

export function parseSyslogMessage(text: string): SyslogMessage {
  const body = text.replace(/[\r\n\0]+$/, '');
  const pri = PRI.exec(body);
  const rest = pri ? body.slice(pri[0].length) : body;
  const marker = CEF_START.exec(rest.slice(0, MAX_HEADER + 16));
  const cefAt = marker ? (marker.index ?? 0) + marker[0].length - marker[1].length : -1;
  const header = cefAt >= 0 ? rest.slice(0, cefAt) : rest.slice(0, MAX_HEADER);
  const message: SyslogMessage = {};
  if (pri && Number(pri[1]) <= 191) message.pri = Number(pri[1]);
  const h5424 = RFC5424.exec(header);
  const h3164 = h5424 ? undefined : RFC3164.exec(header);
  const [hostname, appName] = h5424 ? [h5424[1], h5424[2]] : h3164 ? [h3164[1], h3164[2]] : [];
  if (hostname && hostname !== '-') message.hostname = hostname;
  if (appName && appName !== '-') message.appName = appName;
  if (cefAt >= 0 && cefAt <= MAX_HEADER) message.cef = rest.slice(cefAt);
  return message;
}
