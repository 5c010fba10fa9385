/**
 * A private PostgreSQL cluster for the production stack: created with `initdb` under DATA_DIR, run as a
 * child process (no system service, no root-only path), TCP on 127.0.0.1 only (no Unix socket), password
 * authentication. PostgreSQL refuses to run as root: when we are root, the cluster's files belong to the
 * unprivileged `nobody` user and `initdb`/`postgres` are spawned with that uid/gid (Node's spawn does the
 * setgid/setgroups/setuid before exec — no runuser, su or sudo needed).
 */
import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Child, startChild, until } from './child';

const run = promisify(execFile);

export interface PostgresOptions {
  /** The cluster directory (PGDATA); created on first start. */
  dir: string;
  port: number;
  /** The cluster's superuser, which Temporal connects as. */
  user: string;
  password: string;
  logFile: string;
}

export interface RunningPostgres {
  port: number;
  version: string;
  /** Who the server runs as ("nobody" when we are root). */
  osUser: string;
  /** The current process (a new one after start()). */
  child(): Child;
  stop(): Promise<void>;
  /** Starts it again after stop() (same directory and port); resolves when it accepts connections. */
  start(): Promise<void>;
}

/** The directory holding initdb and postgres: where `initdb` on the PATH points, else Debian's layout. */
export function postgresBinDir(): string {
  try {
    const onPath = execFileSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).trim();
    if (onPath) return path.dirname(realpathSync(onPath));
  } catch {
    // not on the PATH
  }
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(path.join(base, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (!versions.length) throw new Error('PostgreSQL not found: install it (Debian: apt-get install postgresql) so that initdb and postgres exist');
  return path.join(base, versions[0]!, 'bin');
}

/** uid/gid to run PostgreSQL as: ourselves, or `nobody` when we are root. */
function runAs(): { uid?: number; gid?: number; name: string } {
  if (process.getuid?.() !== 0) return { name: process.env.USER ?? String(process.getuid?.()) };
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'));
  if (!line) throw new Error('running as root and there is no "nobody" user to run PostgreSQL as (it refuses to run as root)');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid), name: 'nobody' };
}

export async function startPostgres(o: PostgresOptions): Promise<RunningPostgres> {
  const bin = postgresBinDir();
  const as = runAs();
  const spawnAs = as.uid === undefined ? {} : { uid: as.uid, gid: as.gid };
  if (!existsSync(path.join(o.dir, 'PG_VERSION'))) await initCluster(bin, o, spawnAs);
  const version = readFileSync(path.join(o.dir, 'PG_VERSION'), 'utf8').trim();

  const spawnPostgres = async () => {
    const child = startChild({
      name: 'postgresql',
      command: path.join(bin, 'postgres'),
      args: ['-D', o.dir, '-p', String(o.port)],
      env: { PATH: process.env.PATH, LANG: 'C.UTF-8' },
      logFile: o.logFile,
      ...spawnAs,
    });
    await until(
      `PostgreSQL on 127.0.0.1:${o.port}`,
      async () => {
        await run(path.join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(o.port), '-q']);
        return true;
      },
      60_000,
      child,
    );
    return child;
  };
  let child = await spawnPostgres();
  return {
    port: o.port,
    version,
    osUser: as.name,
    child: () => child,
    async stop() {
      await child.stop('SIGINT', 30_000); // "fast" shutdown: disconnect clients, checkpoint, exit
    },
    async start() {
      if (child.running) return;
      child = await spawnPostgres();
    },
  };
}

async function initCluster(bin: string, o: PostgresOptions, spawnAs: { uid?: number; gid?: number }): Promise<void> {
  rmSync(o.dir, { recursive: true, force: true });
  mkdirSync(path.dirname(o.dir), { recursive: true });
  mkdirSync(o.dir, { mode: 0o700 });
  // The superuser's password reaches initdb in a file only its user can read, removed right after.
  const pwDir = mkdtempSync(path.join(path.dirname(o.dir), '.initdb-'));
  const pwFile = path.join(pwDir, 'pw');
  writeFileSync(pwFile, o.password + '\n', { mode: 0o600 });
  if (spawnAs.uid !== undefined) for (const p of [o.dir, pwDir, pwFile]) chownSync(p, spawnAs.uid, spawnAs.gid!);
  await new Promise<void>((resolve, reject) => {
    execFile(
      path.join(bin, 'initdb'),
      ['-D', o.dir, '-U', o.user, `--pwfile=${pwFile}`, '--auth-host=scram-sha-256', '--auth-local=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8'],
      { ...spawnAs, env: { PATH: process.env.PATH, LANG: 'C.UTF-8' } },
      (err, _stdout, stderr) => {
        if (!err) return resolve();
        const hint = /Permission denied/i.test(stderr) && spawnAs.uid !== undefined ? ` (PostgreSQL runs as "nobody": every directory above ${o.dir} must be searchable by it)` : '';
        reject(new Error(`initdb failed${hint}: ${stderr.trim().split('\n').slice(-5).join('\n')}`));
      },
    );
  }).finally(() => rmSync(pwDir, { recursive: true, force: true }));
  // Loopback TCP only, no Unix socket (its default directory is root's), enough connections for the
  // server's pools (frontend, history, matching, worker; persistence and visibility each).
  appendFileSync(
    path.join(o.dir, 'postgresql.conf'),
    ["", "# ads-mitigator production stack", "listen_addresses = '127.0.0.1'", "unix_socket_directories = ''", 'max_connections = 300', 'logging_collector = off', ''].join('\n'),
  );
}
