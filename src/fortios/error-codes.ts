/**
 * FortiOS internal error numbers (the `error` field of a failed reply, reference §3.3) and the text the
 * CLI prints for them. The client uses the text in error messages, the emulator in `cli_error`.
 */
export const FortiErrorCode = {
  NotFound: -3,
  MaxEntries: -4,
  Duplicate: -5,
  InvalidIp: -8,
  InvalidNetmask: -9,
  PermissionDenied: -14,
  DuplicateEntry: -15,
  EntryUsed: -23,
  PermissionDeniedAlt: -37,
  EmptyValue: -56,
  TooLong: -72,
  AddressGroupSameName: -163,
  AddressVipSameName: -164,
  GroupVipSameName: -165,
  XssCharacters: -173,
  InvalidValue: -651,
} as const;

const TEXT: Readonly<Record<number, string>> = {
  [-1]: 'Invalid length of value',
  [-2]: 'Index out of range',
  [-3]: 'Entry not found',
  [-4]: 'Maximum number of entries has been reached',
  [-5]: 'A duplicate entry already exists',
  [-8]: 'Invalid IP Address',
  [-9]: 'Invalid IP Netmask',
  [-14]: 'Permission denied. Insufficient privileges',
  [-15]: 'Duplicated entry',
  [-16]: 'Blank or incorrect address entry',
  [-20]: 'Blank entry',
  [-23]: 'The entry is used by other entries',
  [-37]: 'Permission denied',
  [-50]: 'Input is in invalid format',
  [-56]: 'Empty values are not allowed',
  [-61]: 'Input not as expected',
  [-72]: 'Field value exceeds the maximum number of characters',
  [-163]: 'Address names and address group names cannot be the same',
  [-164]: 'Address names and virtual IP names cannot be the same',
  [-165]: 'Address group names and virtual IP names cannot be the same',
  [-173]: 'The string contains XSS vulnerability characters',
  [-651]: 'Input value is invalid',
};

export function fortiErrorText(code: number): string {
  return TEXT[code] ?? `FortiOS error ${code}`;
}
