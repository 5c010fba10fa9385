/**
 * `ads-mitigator` operator CLI: block, unblock, extend, list, show, status, allow — all through the REST API, so
 * that the CLI needs no Temporal access and obeys the same tokens and validation as every other client.
 * Human tables by default, `--json` for scripts. Exit codes: 0 ok, 1 the API refused or is unreachable
 * (or, for `status`, not ready), 2 usage error.
 */
import os from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import type { AddResult, AllowEntry } from '../allowlist';
import type { BlockResult, BlockSummary } from '../blocks/service';
import type { Env } from '../config';
import type { BlockStatus } from '../../workflows/messages';
import { BLOCK_STATES } from '../api/schemas';
import { ApiClient, CliApiError } from './api-client';
import { blockDetails, keyValues, table, when } from './format';
import { Access, apiBase, apiToken, ApiTransport, apiTransport, cliEnvironment, TlsSettingsError } from './settings';

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Default: process.env. */
  env?: Env;
  fetch?: typeof fetch;
}

class UsageError extends Error {}

/** What an action hands back: the exit code (output is already written). */
type Action = (ctx: Context, ...args: never[]) => Promise<number | void>;

interface Context {
  io: CliIo;
  env: Env;
  json: boolean;
  api: ApiClient;
  token(access: Access): string | undefined;
  /** `--json` prints the API's answer as is; otherwise `human` formats it. */
  print(body: unknown, human: () => string): void;
}

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const env = io.env ?? process.env;
  let exitCode = 0;
  // TLS transports opened by this run: closed at its end so that no keep-alive socket holds the process.
  const transports: ApiTransport[] = [];
  const program = new Command('ads-mitigator')
    .description('Operate ads-mitigator blocks through its REST API')
    .option('--api <url>', 'API base URL (default: API_URL, or http://API_HOST:API_PORT)')
    .option('--token <token>', 'API token (default: API_WRITE_TOKEN / API_READ_TOKEN, or DATA_DIR/secrets.json)')
    .option('--ca-file <pem>', "CA that signed the API's certificate (default: ADS_MITIGATOR_CA_FILE, else the system CAs)")
    .option('--client-cert <pem>', 'client certificate for mutual TLS (default: ADS_MITIGATOR_CLIENT_CERT)')
    .option('--client-key <pem>', 'its private key (default: ADS_MITIGATOR_CLIENT_KEY)')
    .option('--actor <name>', 'who you are, recorded with your actions (default: your user name)')
    .option('--json', 'print the API replies as JSON')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError();

  /** Registers an action that runs with a context and records its exit code. */
  const run =
    (action: Action) =>
    async (...args: unknown[]): Promise<void> => {
      const cmd = args[args.length - 1] as Command;
      exitCode = (await action(context(cmd, io, env, transports), ...(args.slice(0, -1) as never[]))) ?? 0;
    };

  program
    .command('block <ip>')
    .description('block an address or CIDR block now')
    .option('--ttl <duration>', 'how long, e.g. 90s, 30m, 6h, 2d (default: BLOCK_TTL of the service)')
    .option('--reason <text>', 'why (recorded with the block)')
    .option('--target <name>', 'firewall target; repeat for several (default: all)', collect, [])
    .action(run(block));
  program
    .command('unblock <ip>')
    .description('lift a block now (succeeds when the address is not blocked)')
    .option('--reason <text>', 'why (recorded with the block)')
    .option('--target <name>', 'only on this firewall target')
    .option('--allow-for <duration>', 'also allowlist the address for this long (e.g. 24h), so that the next event does not block it again')
    .action(run(unblock));
  program
    .command('extend <ip>')
    .description('move the expiry of a block later')
    .addOption(new Option('--by <duration>', 'add this to the current expiry, e.g. 1h').conflicts('until'))
    .addOption(new Option('--until <time>', 'new expiry, ISO 8601 with a zone, e.g. 2030-01-01T00:00:00Z'))
    .option('--target <name>', 'firewall target (when several are configured)')
    .action(run(extend));
  program
    .command('list')
    .description('list blocks')
    .option('--ip <ip>', 'an address, or a CIDR block containing the blocked addresses')
    .option('--target <name>', 'firewall target')
    .addOption(new Option('--state <state>', 'block state').choices(BLOCK_STATES))
    .option('--expires-before <time>', 'ISO 8601 time with a zone')
    .option('--all', 'include ended blocks')
    .action(run(list));
  program
    .command('show <ip>')
    .description('one block with its events and history')
    .option('--target <name>', 'firewall target (when several are configured)')
    .action(run(show));
  program.command('status').description('is the service up and ready (Temporal, firewalls)?').action(run(status));
  const allow = program.command('allow').description('the runtime allowlist: addresses that events must not block (no restart needed)');
  allow
    .command('add <cidr>')
    .description('allowlist an address or CIDR block; lifts its running blocks unless --keep-blocks')
    .requiredOption('--reason <text>', 'why (shown wherever the entry is named)')
    .addOption(new Option('--for <duration>', 'how long, e.g. 24h (default: until removed)').conflicts('until'))
    .addOption(new Option('--until <time>', 'until when, ISO 8601 with a zone'))
    .option('--keep-blocks', 'only prevent new blocks; leave the running ones')
    .action(run(allowAdd));
  allow.command('list').description('the entries in force').action(run(allowList));
  allow.command('remove <cidr>').description('remove an entry (succeeds when there is none)').action(run(allowRemove));

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (err) {
    return failure(err, io);
  } finally {
    await Promise.all(transports.splice(0).map((t) => t.close()));
  }
}


function failure(err: unknown, io: CliIo): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2; // commander already printed why
  if (err instanceof UsageError || err instanceof TlsSettingsError) {
    io.stderr(`error: ${err.message}\n`);
    return 2;
  }
  if (err instanceof CliApiError) {
    io.stderr(`error: ${err.message}${err.code ? ` [${err.code}${err.status ? `, HTTP ${err.status}` : ''}]` : ''}\n`);
    return 1;
  }
  io.stderr(`error: ${(err as Error).message ?? String(err)}\n`);
  return 1;
}

function context(cmd: Command, io: CliIo, env: Env, transports: ApiTransport[]): Context {
  const g = cmd.optsWithGlobals<{ api?: string; token?: string; actor?: string; json?: boolean; caFile?: string; clientCert?: string; clientKey?: string }>();
  const json = g.json === true;
  const transport = io.fetch ? undefined : apiTransport(g, env);
  if (transport) transports.push(transport);
  return {
    io,
    env,
    json,
    api: new ApiClient(apiBase(g.api, env), g.actor ?? userName(), io.fetch ?? transport?.fetch),
    token: (access) => apiToken(g.token, access, env),
    print(body, human) {
      io.stdout(json ? `${JSON.stringify(body, null, 2)}\n` : human());
    },
  };
}

/** The login name, when it is one the API accepts as X-Actor. */
function userName(): string | undefined {
  try {
    const name = os.userInfo().username;
    return /^[A-Za-z0-9._@+:-]{1,64}$/.test(name) ? name : undefined;
  } catch {
    return undefined;
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

const enc = encodeURIComponent;

// ---------------------------------------------------------------------------------------------- commands

async function block(c: Context, ip: string, o: { ttl?: string; reason?: string; target: string[] }): Promise<void> {
  const body = { ip, ttl: o.ttl, reason: o.reason, targets: o.target.length ? o.target : undefined };
  const { body: r } = await c.api.request<{ ip: string; results: BlockResult[] }>('/v1/blocks', { method: 'POST', token: c.token('write'), body });
  c.print(r, () => `${r.ip} blocked\n` + table(r.results.map((x) => ({ ...x, expires: when(x.expiresAt) })), ['target', 'outcome', 'state', 'expires']));
}

async function unblock(c: Context, ip: string, o: { reason?: string; target?: string; allowFor?: string }): Promise<void> {
  type Reply = { ip: string; found: boolean; results: { target: string; found: boolean; status?: BlockStatus }[]; allowlisted?: AllowEntry };
  const { body: r } = await c.api.request<Reply>(`/v1/blocks/${enc(ip)}`, {
    method: 'DELETE',
    token: c.token('write'),
    query: { reason: o.reason, target: o.target, allowFor: o.allowFor },
  });
  c.print(r, () => {
    const allowed = r.allowlisted ? `${r.allowlisted.cidr} allowlisted ${until(r.allowlisted)}\n` : '';
    if (!r.found) return `${r.ip} was not blocked\n` + allowed;
    const rows = r.results.map((x) => ({ target: x.target, found: x.found ? 'yes' : 'no', state: x.status?.state }));
    return `${r.ip} unblocked (the address is removed from the firewall in the background)\n` + allowed + table(rows, ['target', 'found', 'state']);
  });
}

async function extend(c: Context, ip: string, o: { by?: string; until?: string; target?: string }): Promise<void> {
  if (!o.by === !o.until) throw new UsageError('give exactly one of --by <duration> or --until <time>');
  const body = o.by ? { by: o.by } : { until: o.until };
  const { body: s } = await c.api.request<BlockStatus>(`/v1/blocks/${enc(ip)}/extend`, {
    method: 'POST',
    token: c.token('write'),
    query: { target: o.target },
    body,
  });
  c.print(s, () => `${s.ip} on ${s.target} now expires at ${when(s.expiresAt)}\n`);
}

async function list(c: Context, o: { ip?: string; target?: string; state?: string; expiresBefore?: string; all?: boolean }): Promise<void> {
  const blocks: BlockSummary[] = [];
  let pageToken: string | undefined;
  do {
    const query = { ip: o.ip, target: o.target, state: o.state, expiresBefore: o.expiresBefore, includeEnded: o.all ? 'true' : undefined, pageToken, pageSize: '1000' };
    const { body } = await c.api.request<{ blocks: BlockSummary[]; nextPageToken?: string }>('/v1/blocks', { token: c.token('read'), query });
    blocks.push(...body.blocks);
    pageToken = body.nextPageToken;
  } while (pageToken);
  c.print({ blocks }, () => {
    if (blocks.length === 0) return 'no blocks\n';
    const rows = blocks.map((b) => ({ ...b, expires: b.expiresAt, events: b.eventIds.length, status: b.status.toLowerCase() }));
    const base = ['ip', 'target', 'state', 'expires', 'events', 'method', 'severity'] as const;
    return table(rows, o.all ? [...base, 'status'] : base) + `${blocks.length} block${blocks.length === 1 ? '' : 's'}\n`;
  });
}

async function show(c: Context, ip: string, o: { target?: string }): Promise<void> {
  const { body: s } = await c.api.request<BlockStatus>(`/v1/blocks/${enc(ip)}`, { token: c.token('read'), query: { target: o.target } });
  c.print(s, () => {
    let out = blockDetails(s);
    if (s.events.length) {
      out += '\n' + table(s.events.map((e) => ({ ...e, received: new Date(e.receivedAtMs).toISOString() })), ['id', 'method', 'severity', 'received']);
    }
    if (s.extensions.length) {
      const rows = s.extensions.map((x) => ({ at: iso(x.atMs), from: iso(x.fromMs), to: iso(x.toMs), by: x.actor, cause: x.cause }));
      out += '\n' + table(rows, ['at', 'from', 'to', 'by', 'cause']);
    }
    return out;
  });
}

interface Readiness {
  status?: string;
  checks?: { temporal: { ok: boolean; error?: string }; firewalls: Record<string, { ok: boolean; error?: string; version?: string }> };
  error?: { message: string; details?: { checks?: Readiness['checks'] } };
}

async function status(c: Context): Promise<number> {
  const health = await c.api.request<{ status: string }>('/healthz');
  // With a token the service names each check (anonymous callers only hear ready / not ready).
  const ready = await c.api.request<Readiness>('/readyz', { token: c.token('read'), acceptStatus: [503] });
  const ok = ready.status === 200;
  const checks = ready.body.checks ?? ready.body.error?.details?.checks;
  c.print({ healthz: health.body, readyz: ready.body }, () => {
    const line = (name: string, ch: { ok: boolean; error?: string; version?: string }) =>
      `${name.padEnd(24)} ${ch.ok ? 'ok' : 'FAIL'}${ch.version ? ` (FortiOS ${ch.version})` : ''}${ch.error ? `: ${ch.error}` : ''}\n`;
    let out = `${'api'.padEnd(24)} ${health.body.status}\n`;
    if (checks) {
      out += line('temporal', checks.temporal);
      for (const [name, ch] of Object.entries(checks.firewalls)) out += line(`firewall ${name}`, ch);
    }
    return out + (ok ? 'ready\n' : 'NOT READY\n');
  });
  return ok ? 0 : 1;
}

async function allowAdd(c: Context, cidr: string, o: { reason: string; for?: string; until?: string; keepBlocks?: boolean }): Promise<void> {
  const body = { cidr, reason: o.reason, for: o.for, until: o.until, liftExisting: o.keepBlocks ? false : undefined };
  const { body: r } = await c.api.request<AddResult>('/v1/allowlist', { method: 'POST', token: c.token('write'), body });
  c.print(r, () => {
    let out = `${r.entry.cidr} allowlisted ${until(r.entry)}${r.replaced ? ' (replaces the previous entry)' : ''}\n`;
    if (r.lifted.length) out += `lifted ${r.lifted.length} block${r.lifted.length === 1 ? '' : 's'}:\n` + table(r.lifted, ['ip', 'target']);
    return out;
  });
}

async function allowList(c: Context): Promise<void> {
  const { body } = await c.api.request<{ entries: AllowEntry[] }>('/v1/allowlist', { token: c.token('read') });
  c.print(body, () => {
    if (body.entries.length === 0) return 'the runtime allowlist is empty\n';
    const rows = body.entries.map((e) => ({ ...e, expires: e.expiresAt ? when(e.expiresAt) : 'until removed' }));
    return table(rows, ['cidr', 'expires', 'reason', 'actor']);
  });
}

async function allowRemove(c: Context, cidr: string): Promise<void> {
  const { body: r } = await c.api.request<{ cidr: string; removed: boolean }>(`/v1/allowlist/${enc(cidr)}`, { method: 'DELETE', token: c.token('write') });
  c.print(r, () => (r.removed ? `${r.cidr} removed from the allowlist\n` : `${r.cidr} was not on the allowlist\n`));
}

function until(e: AllowEntry): string {
  return e.expiresAt ? `until ${when(e.expiresAt)}` : 'until removed';
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Entry point of bin/ads-mitigator.js. */
export function main(argv: readonly string[] = process.argv.slice(2)): void {
  const io: CliIo = { stdout: (t) => void process.stdout.write(t), stderr: (t) => void process.stderr.write(t), env: cliEnvironment(process.env) };
  void runCli(argv, io).then((code) => {
    process.exitCode = code;
  });
}
