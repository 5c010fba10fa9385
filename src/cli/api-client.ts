/** The REST API as the CLI sees it: JSON in, JSON out, the API's error shape turned into an exception. */

export class CliApiError extends Error {
  constructor(
    message: string,
    public readonly status?: number,
    public readonly code?: string,
    public readonly details?: unknown,
  ) {
    super(message);
  }
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'DELETE';
  token?: string;
  body?: unknown;
  query?: Record<string, string | undefined>;
  /** Accept these non-2xx statuses as answers (readyz answers 503 with its checks). */
  acceptStatus?: number[];
}

const TIMEOUT_MS = 30_000;

export class ApiClient {
  constructor(
    private readonly base: string,
    private readonly actor?: string,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  async request<T>(path: string, o: RequestOptions = {}): Promise<{ status: number; body: T }> {
    const url = new URL(this.base + path);
    for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    if (this.actor) headers['x-actor'] = this.actor;
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await this.fetchImpl(url, {
        method: o.method ?? 'GET',
        headers,
        body: o.body === undefined ? undefined : JSON.stringify(o.body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliApiError(`cannot reach the API at ${this.base}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    const body = await readJson(res);
    if (res.ok || o.acceptStatus?.includes(res.status)) return { status: res.status, body: body as T };
    throw apiError(res.status, body);
  }
}

async function readJson(res: Response): Promise<unknown> {
  const text = await res.text();
  try {
    return text === '' ? undefined : JSON.parse(text);
  } catch {
    return text;
  }
}

function apiError(status: number, body: unknown): CliApiError {
  const e = (body as { error?: { code?: string; message?: string; details?: unknown } } | undefined)?.error;
  if (!e?.message) return new CliApiError(`HTTP ${status}`, status);
  const hint = status === 401 ? ' (give --token, set API_WRITE_TOKEN / API_READ_TOKEN, or DATA_DIR where the service keeps secrets.json)' : '';
  return new CliApiError(`${e.message}${hint}`, status, e.code, e.details);
}
