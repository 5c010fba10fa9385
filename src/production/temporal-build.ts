/**
 * The real Temporal server and its schema tool, built once from the Go module proxy at a pinned version
 * (`go install go.temporal.io/server/cmd/server@vX`) and cached under the project (.cache/, gitignored):
 * no binary is downloaded from anywhere but the module proxy, and nothing lands outside the project
 * (Go's module and build caches are pointed into .cache/go too). GOTOOLCHAIN=auto lets an older `go`
 * fetch the toolchain the module asks for (v1.32.2 needs go ≥ 1.26.10) through the same proxy.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../temporal/binaries';

const run = promisify(execFile);

/** The pinned server version (compose uses the same: docker-compose.yml TEMPORAL_VERSION). */
export const TEMPORAL_SERVER_VERSION = 'v1.32.2';

export interface TemporalServerBinaries {
  version: string;
  server: string;
  sqlTool: string;
}

export function temporalCacheDir(version = TEMPORAL_SERVER_VERSION, root = projectRoot()): string {
  return path.join(root, '.cache', 'temporal-server', version);
}

/**
 * The cached binaries, built first if missing (9–15 minutes on a shared 2-core box from a clean cache,
 * toolchain download included; nothing after).
 * `log` hears what is happening (the build is long: say so).
 */
export async function ensureTemporalServer(opts: { version?: string; root?: string; log?: (msg: string) => void } = {}): Promise<TemporalServerBinaries> {
  const version = opts.version ?? TEMPORAL_SERVER_VERSION;
  const root = opts.root ?? projectRoot();
  const dir = temporalCacheDir(version, root);
  const bins: TemporalServerBinaries = { version, server: path.join(dir, 'bin', 'temporal-server'), sqlTool: path.join(dir, 'bin', 'temporal-sql-tool') };
  if (existsSync(bins.server) && existsSync(bins.sqlTool)) return bins;

  const go = process.env.GO ?? 'go';
  try {
    await run(go, ['version']);
  } catch {
    throw new Error(`the Temporal server is built from source with Go, and "${go}" was not found: install Go ≥ 1.21 (GOTOOLCHAIN=auto fetches the version the server needs)`);
  }
  const goCache = path.join(root, '.cache', 'go');
  const tmpBin = path.join(dir, 'bin.tmp');
  rmSync(tmpBin, { recursive: true, force: true });
  mkdirSync(tmpBin, { recursive: true });
  opts.log?.(`building Temporal server ${version} from the Go module proxy into ${path.relative(root, dir)} (once; several minutes) …`);
  const t0 = Date.now();
  try {
    await run(go, ['install', `go.temporal.io/server/cmd/server@${version}`, `go.temporal.io/server/cmd/tools/sql@${version}`], {
      cwd: dir,
      env: {
        ...process.env,
        GOTOOLCHAIN: 'auto',
        GOBIN: tmpBin,
        GOMODCACHE: path.join(goCache, 'mod'),
        GOCACHE: path.join(goCache, 'build'),
        // Writable module cache: `rm -rf .cache` works without `go clean -modcache`.
        GOFLAGS: '-modcacherw -trimpath',
        CGO_ENABLED: '0',
      },
      maxBuffer: 64 << 20,
    });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`building the Temporal server failed: ${(e.stderr ?? e.message).split('\n').slice(-15).join('\n')}`);
  }
  mkdirSync(path.dirname(bins.server), { recursive: true });
  renameSync(path.join(tmpBin, 'sql'), bins.sqlTool);
  renameSync(path.join(tmpBin, 'server'), bins.server); // last: its presence means "complete"
  rmSync(tmpBin, { recursive: true, force: true });
  opts.log?.(`Temporal server ${version} built in ${Math.round((Date.now() - t0) / 1000)} s`);
  return bins;
}
