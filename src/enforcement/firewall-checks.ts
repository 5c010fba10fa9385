/**
 * Start-up findings shared by the backends: does the object exist, and does a deny policy use it? Each
 * finding says exactly what to configure (FortiOS CLI), so an operator can fix the firewall from the log.
 */
import type { FortiOSClient } from '../fortios/client';
import type { AddressFamily } from '../fortios/subnet';
import type { Finding } from './port';

/** Wraps one firewall call for observation (metrics, tests): `op` names it. */
export type Observe = <T>(op: string, fn: () => Promise<T>) => Promise<T>;

export async function groupPolicyFindings(fw: FortiOSClient, groups: { ipv4: string[]; ipv6: string[] }): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const family of ['ipv4', 'ipv6'] as AddressFamily[]) {
    const table = family === 'ipv4' ? 'addrgrp' : 'addrgrp6';
    const policies = await fw.localInPolicies(family).catch(() => []);
    for (const name of groups[family]) {
      const g = await fw.getGroup(family, name);
      if (!g) {
        findings.push({ ok: false, what: `${table} "${name}" does not exist`, fix: `config firewall ${table}\n    edit "${name}"\n        set member "none"\n    next\nend` });
        continue;
      }
      findings.push({ ok: true, what: `${table} "${name}" exists (${g.members.length} members)` });
      const used = await fw.findDenyPolicies(name).catch(() => policies.filter((p) => p.action === 'deny' && p.status !== 'disable' && p.srcaddr.includes(name)).map((p) => ({ table: 'local-in-policy', policyid: p.policyid })));
      findings.push(
        used.length
          ? { ok: true, what: `deny policy ${used.map((u) => `${u.table}/${u.policyid}`).join(', ')} references "${name}"` }
          : {
              ok: false,
              what: `no enabled deny local-in${family === 'ipv6' ? '6' : ''} policy references "${name}" (fine if a forward policy does: then it protects the servers behind the firewall)`,
              fix: `config firewall local-in-policy${family === 'ipv6' ? '6' : ''}\n    edit 0\n        set intf "wan1"\n        set srcaddr "${name}"\n        set dstaddr "all"\n        set service "ALL"\n        set schedule "always"\n        set action deny\n    next\nend`,
            },
      );
    }
  }
  return findings;
}

export async function feedFindings(fw: FortiOSClient, feed: string): Promise<Finding[]> {
  const fix = `config system external-resource\n    edit "${feed}"\n        set type address\n        set update-method push\n    next\nend`;
  const r = await fw.externalResource(feed);
  if (!r) return [{ ok: false, what: `external resource "${feed}" does not exist (FortiOS 7.2.1+ for push)`, fix }];
  const findings: Finding[] = [];
  findings.push(r.type === 'address' ? { ok: true, what: `external resource "${feed}" is of type address` } : { ok: false, what: `external resource "${feed}" is of type ${r.type}, not address`, fix });
  findings.push(r.updateMethod === 'push' ? { ok: true, what: `"${feed}" takes pushed updates` } : { ok: false, what: `"${feed}" is updated by ${r.updateMethod ?? 'feed'} (pull): use update-method push, or let the firewall pull GET /v1/feeds/{target}`, fix });
  const policies = [...(await fw.localInPolicies('ipv4').catch(() => [])), ...(await fw.localInPolicies('ipv6').catch(() => []))];
  const used = await fw.findDenyPolicies(feed).catch(() => []);
  findings.push(
    used.length || policies.some((p) => p.action === 'deny' && p.status !== 'disable' && p.srcaddr.includes(feed))
      ? { ok: true, what: `a deny policy references "${feed}"` }
      : { ok: false, what: `no enabled deny local-in policy references "${feed}" (feeds in local-in policies need FortiOS 7.2.4+ / 7.4.0+; fine if a forward policy does)`, fix: `config firewall local-in-policy\n    edit 0\n        set intf "wan1"\n        set srcaddr "${feed}"\n        set dstaddr "all"\n        set service "ALL"\n        set schedule "always"\n        set action deny\n    next\nend` },
  );
  return findings;
}
