/**
 * The OpenAPI 3 description served at GET /openapi.json. Request bodies and query parameters are generated
 * from the zod schemas the routes validate with (src/api/schemas.ts); replies are written out here.
 * A test walks the app's routes and fails when one is missing from this document.
 */
import { z } from 'zod';
import { allowBodySchema, BLOCK_STATES, blockBodySchema, extendBodySchema, listQuerySchema, targetQuerySchema, unblockQuerySchema } from './schemas';

type Json = Record<string, unknown>;

const toSchema = (s: z.ZodType): Json => z.toJSONSchema(s, { target: 'openapi-3.0', io: 'input' }) as Json;

/** The properties of a zod object schema as OpenAPI query parameters. */
function queryParams(s: z.ZodObject): Json[] {
  const schema = toSchema(s) as { properties: Record<string, Json>; required?: string[] };
  return Object.entries(schema.properties).map(([name, p]) => ({
    name,
    in: 'query',
    required: schema.required?.includes(name) ?? false,
    ...(p.description ? { description: p.description } : {}),
    schema: p,
  }));
}

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json, description: string): Json => ({ description, content: { 'application/json': { schema } } });
const errorReply = (description: string): Json => json(ref('Error'), description);

const ipPath: Json = {
  name: 'ip',
  in: 'path',
  required: true,
  description: 'IPv4 or IPv6 address; a CIDR block percent-encoded (203.0.113.0%2F24)',
  schema: { type: 'string' },
};

const cidrPath: Json = {
  name: 'cidr',
  in: 'path',
  required: true,
  description: 'the entry: an address, or a CIDR block percent-encoded (203.0.113.0%2F24)',
  schema: { type: 'string' },
};

const commonErrors = (...extra: [number, string][]): Json =>
  Object.fromEntries([
    ['400', errorReply('invalid request (details.issues lists the problems)')],
    ['401', errorReply('missing or invalid token')],
    ['503', errorReply('Temporal unavailable: retry after the Retry-After header')],
    ...extra.map(([status, text]) => [String(status), errorReply(text)]),
  ]);

const schemas: Record<string, Json> = {
  Error: {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} },
      },
    },
  },
  EventRef: {
    type: 'object',
    properties: { id: { type: 'string' }, method: { type: 'string' }, severity: { type: 'string' }, receivedAtMs: { type: 'number' } },
  },
  BlockResult: {
    type: 'object',
    properties: {
      target: { type: 'string' },
      workflowId: { type: 'string' },
      outcome: { type: 'string', enum: ['started', 'extended', 'duplicate', 'unchanged'] },
      state: { type: 'string', enum: [...BLOCK_STATES] },
      expiresAt: { type: 'string', format: 'date-time' },
    },
  },
  BlockStatus: {
    type: 'object',
    description: 'the live state of one block workflow',
    properties: {
      workflowId: { type: 'string' },
      target: { type: 'string' },
      ip: { type: 'string' },
      family: { type: 'string', enum: ['ipv4', 'ipv6'] },
      group: { type: 'string' },
      state: { type: 'string', enum: [...BLOCK_STATES] },
      reason: { type: 'string' },
      actor: { type: 'string' },
      addressName: { type: 'string' },
      createdAt: { type: 'string', format: 'date-time' },
      blockedAt: { type: 'string', format: 'date-time' },
      expiresAt: { type: 'string', format: 'date-time' },
      endedAt: { type: 'string', format: 'date-time' },
      events: { type: 'array', items: ref('EventRef') },
      eventCount: { type: 'integer' },
      extensions: {
        type: 'array',
        items: { type: 'object', properties: { atMs: { type: 'number' }, fromMs: { type: 'number' }, toMs: { type: 'number' }, actor: { type: 'string' }, cause: { type: 'string' } } },
      },
      cancelledBy: { type: 'object', properties: { actor: { type: 'string' }, reason: { type: 'string' }, at: { type: 'string' } } },
      evictedReason: { type: 'string' },
      lastError: { type: 'string' },
      stillActive: {
        type: 'object',
        description: 'STILL_ACTIVE: the settings the block was admitted with and its last question (absent when off)',
        properties: {
          source: { type: 'string', enum: ['intake', 'flowmon'] },
          windowMs: { type: 'number' },
          maxTotalMs: { type: 'number' },
          last: {
            type: 'object',
            properties: { atMs: { type: 'number' }, source: { type: 'string' }, verdict: { type: 'string', enum: ['seen', 'not-seen', 'unknown'] }, detail: { type: 'string' }, extendedToMs: { type: 'number' } },
          },
        },
      },
    },
  },
  BlockSummary: {
    type: 'object',
    description: 'one block as Temporal visibility lists it',
    properties: {
      workflowId: { type: 'string' },
      ip: { type: 'string' },
      target: { type: 'string' },
      group: { type: 'string' },
      state: { type: 'string' },
      expiresAt: { type: 'string', format: 'date-time' },
      eventIds: { type: 'array', items: { type: 'string' } },
      severity: { type: 'string' },
      method: { type: 'string' },
      status: { type: 'string', description: 'workflow execution status (RUNNING, COMPLETED, ...)' },
      startedAt: { type: 'string', format: 'date-time' },
      closedAt: { type: 'string', format: 'date-time' },
    },
  },
  AllowEntry: {
    type: 'object',
    description: 'a runtime allowlist entry: events for addresses it covers are ignored, manual blocks refused',
    required: ['cidr', 'reason', 'actor', 'addedAt'],
    properties: {
      cidr: { type: 'string', description: 'canonical: a host without suffix, a block as net/len' },
      reason: { type: 'string' },
      actor: { type: 'string' },
      addedAt: { type: 'string', format: 'date-time' },
      expiresAt: { type: 'string', format: 'date-time', description: 'absent: until removed' },
    },
  },
  WebhookReply: {
    type: 'object',
    properties: {
      received: { type: 'integer', description: 'events parsed from the body' },
      summary: { type: 'object', additionalProperties: { type: 'integer' }, description: 'events per outcome' },
      events: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            eventId: { type: 'string' },
            kind: { type: 'string', enum: ['ads', 'ids'] },
            method: { type: 'string' },
            priority: { type: 'string' },
            outcome: {
              type: 'string',
              enum: ['started', 'extended', 'unchanged', 'duplicate', 'rejected', 'ignored'],
              description: 'for a blocking event the most consequential of its IP outcomes (started > extended > unchanged > duplicate > rejected)',
            },
            role: { type: 'string', enum: ['source', 'targets'], description: 'whose address the method blocks (DOS: the targets)' },
            rule: { type: 'string', description: 'the intake rule that ignored the event (below-threshold, method-not-blocking, allowlisted, ...)' },
            reason: { type: 'string' },
            ips: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  ip: { type: 'string' },
                  outcome: { type: 'string', enum: ['started', 'extended', 'unchanged', 'duplicate', 'ignored', 'rejected'] },
                  code: { type: 'string', description: 'rejection code, e.g. ip-private, ip-allowlisted, ip-reserved; allowlisted when ignored' },
                  reason: { type: 'string' },
                  targets: { type: 'array', items: ref('BlockResult') },
                  allowlist: ref('AllowEntry'),
                },
              },
            },
            allowlist: ref('AllowEntry'),
          },
        },
      },
      errors: {
        type: 'array',
        description: 'items of the body that are not valid events',
        items: { type: 'object', properties: { index: { type: 'integer' }, message: { type: 'string' } } },
      },
    },
  },
};

const probe = (summary: string, extra: Json = {}): Json => ({ get: { summary, security: [], tags: ['probes'], ...extra } });

export function openApiDocument(): Json {
  return {
    openapi: '3.0.3',
    info: {
      title: 'ads-mitigator',
      version: '0.1.0',
      description: 'Flowmon ADS detections → Temporal workflows → FortiGate blocks. Errors are {"error": {"code", "message", "details"}}.',
    },
    components: {
      securitySchemes: {
        readToken: { type: 'http', scheme: 'bearer', description: 'API_READ_TOKEN (or API_WRITE_TOKEN)' },
        writeToken: { type: 'http', scheme: 'bearer', description: 'API_WRITE_TOKEN' },
        webhookSecret: { type: 'http', scheme: 'bearer', description: 'WEBHOOK_SECRET (unless WEBHOOK_ALLOW_BEARER=false)' },
        webhookSignature: { type: 'apiKey', in: 'header', name: 'X-ADS-Signature', description: 'sha256=<hex HMAC-SHA256(WEBHOOK_SECRET, "<X-ADS-Timestamp>.<raw body>")>' },
        webhookTimestamp: { type: 'apiKey', in: 'header', name: 'X-ADS-Timestamp', description: 'unix seconds; at most 300 s from the service clock' },
        feedPull: { type: 'http', scheme: 'basic', description: 'FEED_PULL_USER / FEED_PULL_PASSWORD (the credential stored in the firewall\'s external resource)' },
      },
      schemas,
    },
    paths: {
      '/healthz': probe('the process is up', { responses: { '200': json({ type: 'object' }, 'up') } }),
      '/readyz': probe('Temporal and every firewall target reachable (results reused for a few seconds)', {
        security: [{}, { readToken: [] }, { writeToken: [] }],
        responses: {
          '200': json({ type: 'object' }, 'ready; with a read or write token, each check'),
          '401': errorReply('a token was given and is not valid'),
          '503': errorReply('not ready; with a token, details.checks says what is not'),
        },
      }),
      '/metrics': probe('Prometheus metrics', { responses: { '200': { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } } }),
      '/openapi.json': probe('this document', { responses: { '200': json({ type: 'object' }, 'OpenAPI 3 document') } }),
      '/v1/events': {
        post: {
          summary: 'the ADS webhook: one event object, an array of events or raw lines, the forwarder\'s {"lines": [...]}, or text/plain lines',
          tags: ['webhook'],
          security: [{ webhookSignature: [], webhookTimestamp: [] }, { webhookSecret: [] }],
          requestBody: {
            required: true,
            content: {
              'application/json': { schema: { oneOf: [{ type: 'object' }, { type: 'array' }] } },
              'text/plain': { schema: { type: 'string', description: 'ADS stdin lines (tab-separated or JSON lines)' } },
            },
          },
          responses: {
            '200': json(ref('WebhookReply'), 'what happened, per event and per IP'),
            '400': errorReply('malformed body (malformed-json, invalid-utf8, malformed, no-events)'),
            '401': errorReply('bad or missing secret / signature'),
            '413': errorReply('body larger than 1 MiB (body-too-large) or more than 500 events (too-many-events)'),
            '415': errorReply('unsupported content type or charset'),
            '429': errorReply('rate limit per source IP exceeded (WEBHOOK_RATE_LIMIT per minute)'),
            '503': errorReply('Temporal unavailable: nothing was started; retry after Retry-After'),
          },
        },
      },
      '/v1/blocks': {
        get: {
          summary: 'active (and with includeEnded, recently ended) blocks',
          tags: ['blocks'],
          security: [{ readToken: [] }, { writeToken: [] }],
          parameters: queryParams(listQuerySchema),
          responses: {
            '200': json({ type: 'object', properties: { blocks: { type: 'array', items: ref('BlockSummary') }, nextPageToken: { type: 'string' } } }, 'one page'),
            ...commonErrors(),
          },
        },
        post: {
          summary: 'manual block',
          tags: ['blocks'],
          security: [{ writeToken: [] }],
          requestBody: { required: true, content: { 'application/json': { schema: toSchema(blockBodySchema) } } },
          responses: {
            '201': json({ type: 'object', properties: { ip: { type: 'string' }, results: { type: 'array', items: ref('BlockResult') } } }, 'started on at least one target'),
            '200': json({ type: 'object', properties: { ip: { type: 'string' }, results: { type: 'array', items: ref('BlockResult') } } }, 'already blocked: recorded'),
            ...commonErrors(
              [403, 'needs the write token'],
              [409, 'the block is being lifted right now; retry'],
              [422, 'the IP may not be blocked (ip-private, ip-allowlisted: details.allowlist names a runtime entry, ...), ttl beyond BLOCK_MAX_TTL, or unknown target'],
            ),
          },
        },
      },
      '/v1/blocks/{ip}': {
        get: {
          summary: 'one block with its events and history',
          tags: ['blocks'],
          security: [{ readToken: [] }, { writeToken: [] }],
          parameters: [ipPath, ...queryParams(targetQuerySchema)],
          responses: { '200': json(ref('BlockStatus'), 'the block'), ...commonErrors([404, 'not blocked']) },
        },
        delete: {
          summary: 'unblock now; idempotent (found: false when not blocked)',
          tags: ['blocks'],
          security: [{ writeToken: [] }],
          parameters: [ipPath, ...queryParams(unblockQuerySchema)],
          responses: {
            '200': json(
              {
                type: 'object',
                properties: {
                  ip: { type: 'string' },
                  found: { type: 'boolean' },
                  results: { type: 'array', items: { type: 'object', properties: { target: { type: 'string' }, found: { type: 'boolean' }, status: ref('BlockStatus') } } },
                  allowlisted: ref('AllowEntry'),
                },
              },
              'unblocked, or was not blocked (with allowFor: the allowlist entry added first)',
            ),
            ...commonErrors([403, 'needs the write token'], [409, 'allowFor: the allowlist refused the entry (full)']),
          },
        },
      },
      '/v1/feeds/{target}': {
        get: {
          summary: 'the addresses a threat-feed target should block (its running blocks), one per line: the file a FortiGate pulls as an external resource of type address',
          tags: ['feeds'],
          security: [{ feedPull: [] }],
          parameters: [{ name: 'target', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': { description: 'one address per line', content: { 'text/plain': { schema: { type: 'string' } } } },
            '401': errorReply('missing or invalid basic-auth credential'),
            '404': errorReply('the pull feed is off (no FEED_PULL_USER / FEED_PULL_PASSWORD), or no threat-feed target of that name'),
            '503': errorReply('Temporal is not reachable'),
          },
        },
      },
      '/v1/blocks/{ip}/extend': {
        post: {
          summary: 'move the expiry later',
          tags: ['blocks'],
          security: [{ writeToken: [] }],
          parameters: [ipPath, ...queryParams(targetQuerySchema)],
          requestBody: { required: true, content: { 'application/json': { schema: toSchema(extendBodySchema) } } },
          responses: {
            '200': json(ref('BlockStatus'), 'the block with its new expiry'),
            ...commonErrors([403, 'needs the write token'], [404, 'not blocked'], [409, 'refused: not later than the current expiry, beyond the maximum, or the block is ending']),
          },
        },
      },
      '/v1/allowlist': {
        get: {
          summary: 'the runtime allowlist entries in force',
          tags: ['allowlist'],
          security: [{ readToken: [] }, { writeToken: [] }],
          responses: { '200': json({ type: 'object', properties: { entries: { type: 'array', items: ref('AllowEntry') } } }, 'the entries'), ...commonErrors() },
        },
        post: {
          summary: 'add (or replace) an entry; lifts the running blocks it covers unless liftExisting is false',
          tags: ['allowlist'],
          security: [{ writeToken: [] }],
          requestBody: { required: true, content: { 'application/json': { schema: toSchema(allowBodySchema) } } },
          responses: {
            '201': json(
              {
                type: 'object',
                properties: {
                  entry: ref('AllowEntry'),
                  replaced: { type: 'boolean' },
                  lifted: { type: 'array', items: { type: 'object', properties: { ip: { type: 'string' }, target: { type: 'string' }, found: { type: 'boolean' } } } },
                },
              },
              'added',
            ),
            '200': json({ type: 'object', description: 'as 201' }, 'an entry for the same network was replaced'),
            ...commonErrors([403, 'needs the write token'], [409, 'the allowlist is full (allowlist-refused)']),
          },
        },
      },
      '/v1/allowlist/{cidr}': {
        delete: {
          summary: 'remove an entry; idempotent (removed: false when there was none)',
          tags: ['allowlist'],
          security: [{ writeToken: [] }],
          parameters: [cidrPath],
          responses: {
            '200': json({ type: 'object', properties: { cidr: { type: 'string' }, removed: { type: 'boolean' }, entry: ref('AllowEntry') } }, 'removed, or was not there'),
            ...commonErrors([403, 'needs the write token']),
          },
        },
      },
    },
  };
}
