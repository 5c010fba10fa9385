/**
 * A small Flowmon ADS REST emulator for the still-active tests: the two routes the adapter uses, as
 * /work/shared/reference/flowmon-ads.md §5.3 describes them — the password-grant token
 * (`POST /resources/oauth/token`, form) and the event search (`GET /rest/ads/events?search=<JSON>`, bearer
 * token) — with faults: a refused login, 500, a hang, a body that is not JSON.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';

export type FlowmonFault = 'none' | 'refuse-login' | 'search-500' | 'search-hang' | 'search-bad-json' | 'search-401';

export interface FlowmonAds {
  url: string;
  user: string;
  password: string;
  /** Sources ADS currently has an open event for. */
  active: Set<string>;
  fault: FlowmonFault;
  tokenRequests: number;
  /** Every accepted search's parsed `search` parameter. */
  searches: { from: string; to: string; source: string[] }[];
  /** Revokes every issued token (the next search answers 401). */
  revokeTokens(): void;
  close(): Promise<void>;
}

export async function startFlowmonAds(o: { user?: string; password?: string; expiresIn?: number } = {}): Promise<FlowmonAds> {
  const tokens = new Set<string>();
  const hanging = new Set<express.Response>();
  let issued = 0;
  const state: FlowmonAds = {
    url: '',
    user: o.user ?? 'mitigator',
    password: o.password ?? 'S3cret-pa55word',
    active: new Set(),
    fault: 'none',
    tokenRequests: 0,
    searches: [],
    revokeTokens: () => tokens.clear(),
    close: async () => undefined,
  };
  const app = express();
  app.post('/resources/oauth/token', express.urlencoded({ extended: false }), (req, res) => {
    state.tokenRequests++;
    const b = req.body as Record<string, string>;
    if (state.fault === 'refuse-login' || b.grant_type !== 'password' || b.client_id !== 'invea-tech' || b.username !== state.user || b.password !== state.password) {
      res.status(400).json({ error: 'invalid_grant', error_description: `Invalid username and password combination for ${b.username}` });
      return;
    }
    const token = `tok-${++issued}-${Math.random().toString(36).slice(2)}`;
    tokens.add(token);
    res.json({ access_token: token, expires_in: o.expiresIn ?? 604800, token_type: 'bearer', scope: null, refresh_token: `refresh-${token}` });
  });
  app.get('/rest/ads/events', (req, res) => {
    const auth = /^bearer (.+)$/i.exec(req.get('authorization') ?? '');
    if (!auth || !tokens.has(auth[1]) || state.fault === 'search-401') {
      res.status(401).json({ error: 'invalid_token' });
      return;
    }
    if (state.fault === 'search-hang') {
      hanging.add(res);
      return;
    }
    if (state.fault === 'search-500') {
      res.status(500).send('<html><body>Internal Server Error</body></html>');
      return;
    }
    if (state.fault === 'search-bad-json') {
      res.type('application/json').send('{"events": [ {"id": 1, ');
      return;
    }
    let search: { from?: unknown; to?: unknown; source?: unknown };
    try {
      search = JSON.parse(String(req.query.search));
    } catch {
      res.status(400).json({ error: 'search is not JSON' });
      return;
    }
    const minute = /^\d{4}-\d\d-\d\d \d\d:\d\d$/;
    if (typeof search.from !== 'string' || typeof search.to !== 'string' || !minute.test(search.from) || !minute.test(search.to) || !Array.isArray(search.source)) {
      res.status(400).json({ error: 'bad search' });
      return;
    }
    const sources = search.source.map(String);
    state.searches.push({ from: search.from, to: search.to, source: sources });
    const events = sources
      .filter((ip) => state.active.has(ip))
      .map((ip, i) => ({ id: 4179600 + i, type: 'SSHDICT', time: search.from, flowStamp: search.from, detail: 'Attack from a single attacker', priority: 4, source: { ip, country: 'ZZ', blacklisted: false }, targets: [{ ip: '198.51.100.10' }], perspectives: [{ name: 'Security Issues' }] }));
    res.json(events);
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = async () => {
    for (const r of hanging) r.socket?.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  return state;
}
