// Tracing (src/telemetry): spans exported over real OTLP/HTTP to a receiver in this process
// (test/support/otlp-receiver.ts), in JSON and protobuf. The Check span joins the caller's trace
// (W3C, B3 single and multi, from the gRPC metadata before the CheckRequest headers), carries the
// decision and nothing else, child spans nest under it across awaits, sampling follows the ratio,
// and a collector that is down, hangs or fails costs the Check path nothing but dropped spans.
import { execFileSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Metadata } from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  TRACING_OFF,
  createTracing,
  type CheckSpan,
  type SpanAttributes,
  type Tracing,
  type TracingHooks,
} from '../../src/telemetry/tracing.ts';
import { tracingSchema, type TracingConfigInput } from '../../src/telemetry/config.ts';
import { OtlpReceiver, type ExportedSpan } from '../support/otlp-receiver.ts';

const CHECK = 'envoy.service.auth.v3.Authorization/Check';
const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const PARENT_ID = 'b7ad6b7169203331';
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_ID}-01`;
// Credentials a Check carries; none of them may ever reach the collector.
const JWT =
  'eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3Qta2V5In0.eyJzdWIiOiJhbGljZUBleGFtcGxlLmNvbSIsInNjb3BlIjoib3JkZXJzOnJlYWQifQ.c2lnbmF0dXJlLXRoYXQtbXVzdC1uZXZlci1sZWFr';
const API_KEY = 'pcl_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0ZZtop';
const COOKIE = 'session=4b1d-s3ss10n-c00k1e-value';
const SUBJECT = 'alice@example.com';

interface Captured {
  log: Logger;
  lines: Array<Record<string, unknown>>;
}

function capturedLog(): Captured {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n'))
        if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

const started: Tracing[] = [];
const receivers: OtlpReceiver[] = [];

async function receiver(mode: Parameters<typeof OtlpReceiver.start>[0] = 'normal'): Promise<OtlpReceiver> {
  const r = await OtlpReceiver.start(mode);
  receivers.push(r);
  return r;
}

async function tracingTo(
  r: OtlpReceiver,
  cfg: Omit<TracingConfigInput, 'enabled'> = {},
  hooks: TracingHooks = {},
  env: Record<string, string> = {},
): Promise<Tracing & Captured> {
  const captured = capturedLog();
  const config = tracingSchema.parse({
    enabled: true,
    otlp_endpoint: r.url,
    protocol: 'http/json',
    ...cfg,
    batch: { schedule_delay_ms: 20, export_timeout_ms: 1000, ...cfg.batch },
  });
  const t = await createTracing(config, env, captured.log, hooks);
  started.push(t);
  return Object.assign(t, captured);
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((t) => t.shutdown(500)));
  await Promise.all(receivers.splice(0).map((r) => r.stop()));
});

const allow = {
  allowed: true,
  status: 200,
  reason: 'allowed',
  route: 'orders-api',
  identity: { method: 'jwt', clientId: 'web-app', subject: SUBJECT },
};
const deny = { allowed: false, status: 401, reason: 'token_expired', route: 'orders-api', credential: 'jwt' };

/** One Check as the gRPC handler will run it: span, work inside it, decision, end. */
async function check<T>(
  t: Tracing,
  headers: Record<string, string>,
  work: () => Promise<T>,
  decision: Parameters<CheckSpan['setDecision']>[0] = allow,
  metadata?: Metadata | Record<string, string>,
): Promise<T> {
  const span = t.startCheckSpan(headers, metadata);
  const result = await span.run(work, undefined);
  span.setDecision(decision);
  span.end();
  return result;
}

const only = (spans: ExportedSpan[], name: string): ExportedSpan => {
  const found = spans.filter((s) => s.name === name);
  expect(found, `spans named ${name}: ${JSON.stringify(spans.map((s) => s.name))}`).toHaveLength(1);
  return found[0];
};

describe('tracing off', () => {
  it('is the shared no-op: the same span object every Check, the work runs as is, nothing is recorded', async () => {
    const { log, lines } = capturedLog();
    const t = await createTracing(tracingSchema.parse({}), { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' }, log);
    expect(t).toBe(TRACING_OFF);
    const a = t.startCheckSpan({ traceparent: TRACEPARENT });
    const b = t.startForwardAuthSpan({}, 'GET', '/authz');
    expect(a).toBe(b);
    expect(a.recording).toBe(false);
    const decision = { ...allow };
    expect(a.run((x: typeof decision) => x, decision)).toBe(decision);
    expect(await t.withChildSpan('jwks', undefined, async (s) => (s.recording ? 'recording' : 'noop'))).toBe('noop');
    a.setDecision(decision);
    a.end();
    await t.shutdown();
    expect(lines).toEqual([]);
  });

  it('loads no OpenTelemetry module; on loads them (checked in a fresh process)', () => {
    const script = (enabled: boolean) => `
      import { createRequire } from 'node:module';
      import { pino } from 'pino';
      import { createTracing } from './src/telemetry/tracing.ts';
      const t = await createTracing({ enabled: ${enabled}, record_user_id: false, otlp_endpoint: 'http://127.0.0.1:1' }, {}, pino({ level: 'silent' }));
      const s = t.startCheckSpan({ traceparent: '${TRACEPARENT}' });
      s.run(() => 1, 0); s.setDecision({ allowed: true, status: 200, reason: 'allowed' }); s.end();
      const cache = Object.keys(createRequire(import.meta.url).cache);
      console.log(cache.filter((k) => k.includes('@opentelemetry')).length);
      process.exit(0);`;
    const loaded = (enabled: boolean) =>
      Number(
        execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(enabled)], {
          cwd: process.cwd(),
          encoding: 'utf8',
        }).trim(),
      );
    expect(loaded(false)).toBe(0);
    expect(loaded(true)).toBeGreaterThan(10);
  });

  it('OTEL_SDK_DISABLED=true wins over the config, and says so once', async () => {
    const { log, lines } = capturedLog();
    const t = await createTracing(tracingSchema.parse({ enabled: true }), { OTEL_SDK_DISABLED: 'true' }, log);
    expect(t).toBe(TRACING_OFF);
    expect(lines.map((l) => l.msg)).toEqual([
      'tracing is enabled in the config but OTEL_SDK_DISABLED=true: no spans are recorded',
    ]);
  });
});

describe('the Check span joins the caller trace', () => {
  it('W3C: trace id, parent span id and tracestate from the CheckRequest headers; a SERVER span named for the Check', async () => {
    const r = await receiver();
    const t = await tracingTo(r);
    await check(t, { traceparent: TRACEPARENT, tracestate: 'envoy=abc,vendor=x1' }, async () => 'ok');
    const s = only(await r.waitForSpans(1), CHECK);
    expect(s).toMatchObject({
      traceId: TRACE_ID,
      parentSpanId: PARENT_ID,
      traceState: 'envoy=abc,vendor=x1',
      kind: 2,
      scope: 'portcullis',
    });
    expect(s.resource['service.name']).toBe('portcullis');
    expect(s.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(s.spanId).not.toBe(PARENT_ID);
  });

  it('B3 single header and B3 multi headers', async () => {
    const r = await receiver();
    const t = await tracingTo(r);
    const b3Trace = '80f198ee56343ba864fe8b2a57d3eff7';
    await check(t, { b3: `${b3Trace}-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90` }, async () => 1);
    await check(
      t,
      { 'x-b3-traceid': '463ac35c9f6413ad48485a3953bb6124', 'x-b3-spanid': 'a2fb4a1d1a96d312', 'x-b3-sampled': '1' },
      async () => 2,
    );
    // A 64-bit B3 trace id is left-padded to 128 bits.
    await check(
      t,
      { 'x-b3-traceid': '48485a3953bb6124', 'x-b3-spanid': '0020000000000001', 'x-b3-sampled': '1' },
      async () => 3,
    );
    const spans = await r.waitForSpans(3);
    expect(spans.map((s) => [s.traceId, s.parentSpanId])).toEqual([
      [b3Trace, 'e457b5a2e4d86bd1'],
      ['463ac35c9f6413ad48485a3953bb6124', 'a2fb4a1d1a96d312'],
      ['000000000000000048485a3953bb6124', '0020000000000001'],
    ]);
  });

  it("the gRPC call metadata (Envoy's own ext_authz span) comes before the CheckRequest headers (the client's); either alone works", async () => {
    const r = await receiver();
    const t = await tracingTo(r);
    const envoyTrace = '11111111111111111111111111111111';
    const md = new Metadata();
    md.set('traceparent', `00-${envoyTrace}-2222222222222222-01`);
    md.set('authorization', `Bearer ${JWT}`);
    await check(t, { traceparent: TRACEPARENT }, async () => 1, allow, md);
    await check(t, { traceparent: TRACEPARENT }, async () => 2, allow, new Metadata());
    await check(t, {}, async () => 3, allow, {
      'x-b3-traceid': envoyTrace,
      'x-b3-spanid': '3333333333333333',
      'x-b3-sampled': '1',
    });
    const spans = await r.waitForSpans(3);
    expect(spans.map((s) => [s.traceId, s.parentSpanId])).toEqual([
      [envoyTrace, '2222222222222222'],
      [TRACE_ID, PARENT_ID],
      [envoyTrace, '3333333333333333'],
    ]);
  });

  it('propagators: the first listed wins when a request carries both; one not listed is not read', async () => {
    const r = await receiver();
    const headers = { traceparent: TRACEPARENT, b3: '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1' };
    const orders: Array<Array<'w3c' | 'b3'>> = [['w3c', 'b3'], ['b3', 'w3c'], ['w3c'], ['b3'], []];
    for (const propagators of orders) {
      const t = await tracingTo(r, { propagators });
      await check(t, propagators.includes('w3c') ? headers : { b3: headers.b3 }, async () => 0);
      if (propagators.length === 0) await check(t, headers, async () => 0);
      await t.shutdown(2000);
    }
    const spans = await r.waitForSpans(6);
    expect(spans.map((s) => s.traceId)).toEqual([
      TRACE_ID,
      '80f198ee56343ba864fe8b2a57d3eff7',
      TRACE_ID,
      '80f198ee56343ba864fe8b2a57d3eff7',
      expect.any(String),
      expect.any(String),
    ]);
    // No propagator: a new trace, not the caller's.
    expect(spans.slice(4).every((s) => s.parentSpanId === '' && s.traceId !== TRACE_ID)).toBe(true);
  });

  it('a malformed or hostile trace context starts a new trace, never an error, and none of it is exported', async () => {
    const r = await receiver();
    const t = await tracingTo(r);
    const hostile: Array<Record<string, string>> = [
      { traceparent: `00-${'0'.repeat(32)}-${PARENT_ID}-01` },
      { traceparent: `00-${TRACE_ID}-${'0'.repeat(16)}-01` },
      { traceparent: `ff-${TRACE_ID}-${PARENT_ID}-01` },
      { traceparent: `00-${TRACE_ID.toUpperCase()}-${PARENT_ID}-01` },
      { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01-${JWT}`.slice(0, 60) + 'x'.repeat(10_000) },
      { b3: `${JWT}-${JWT}-1` },
      { 'x-b3-traceid': 'zz', 'x-b3-spanid': API_KEY },
    ];
    for (const h of hostile) await check(t, h, async () => 0);
    const spans = await r.waitForSpans(hostile.length);
    expect(spans.every((s) => s.parentSpanId === '' && s.traceId !== TRACE_ID && s.traceState === '')).toBe(true);
    const raw = r.rawBytes().toString('latin1');
    expect(raw).not.toContain(JWT);
    expect(raw).not.toContain(API_KEY);
  });
});

describe('what a span records', () => {
  it('the decision: route, decision, status, reason, credential kind, client id, rpc.* per the semantic conventions; no user.id unless configured', async () => {
    const r = await receiver();
    const t = await tracingTo(r);
    await check(t, { traceparent: TRACEPARENT }, async () => 0, allow);
    await check(t, {}, async () => 0, deny);
    const [a, d] = await r.waitForSpans(2);
    expect(a.attributes).toEqual({
      'rpc.system.name': 'grpc',
      'rpc.method': CHECK,
      'rpc.status_code': 'OK',
      'portcullis.decision': 'allow',
      'portcullis.status': 200,
      'portcullis.reason': 'allowed',
      'portcullis.route': 'orders-api',
      'portcullis.credential': 'jwt',
      'portcullis.client_id': 'web-app',
    });
    expect(a.statusCode).toBe(0);
    expect(d.attributes).toMatchObject({
      'portcullis.decision': 'deny',
      'portcullis.status': 401,
      'portcullis.reason': 'token_expired',
      'portcullis.credential': 'jwt',
      'rpc.status_code': 'OK',
    });
    expect(d.attributes).not.toHaveProperty('portcullis.client_id');
    // A deny is a correct answer, not a failed call.
    expect(d.statusCode).toBe(0);
  });

  it('user.id only with record_user_id: true', async () => {
    const r = await receiver();
    const t = await tracingTo(r, { record_user_id: true });
    await check(t, {}, async () => 0, allow);
    const [s] = await r.waitForSpans(1);
    expect(s.attributes['user.id']).toBe(SUBJECT);
  });

  it('a Check that ends the call with a server error is an error span with error.type', async () => {
    const r = await receiver();
    const t = await tracingTo(r);
    const span = t.startCheckSpan({});
    span.end('UNAVAILABLE');
    const [s] = await r.waitForSpans(1);
    expect(s.statusCode).toBe(2);
    expect(s.attributes).toMatchObject({ 'rpc.status_code': 'UNAVAILABLE', 'error.type': 'UNAVAILABLE' });
  });

  it('the forward-auth span: an HTTP SERVER span "{method} {route}" with the response status', async () => {
    const r = await receiver();
    const t = await tracingTo(r);
    const span = t.startForwardAuthSpan({ traceparent: TRACEPARENT }, 'GET', '/authz');
    span.setDecision(deny);
    span.end();
    const weird = t.startForwardAuthSpan({}, 'BREW', '/authz');
    weird.setDecision({ allowed: false, status: 503, reason: 'idp_unavailable' });
    weird.end();
    const [s, w] = await r.waitForSpans(2);
    expect(s).toMatchObject({ name: 'GET /authz', kind: 2, traceId: TRACE_ID, parentSpanId: PARENT_ID, statusCode: 0 });
    expect(s.attributes).toMatchObject({
      'http.request.method': 'GET',
      'http.route': '/authz',
      'http.response.status_code': 401,
      'portcullis.decision': 'deny',
    });
    expect(w).toMatchObject({ name: 'HTTP', statusCode: 2 });
    expect(w.attributes).toMatchObject({
      'http.request.method': '_OTHER',
      'http.response.status_code': 503,
      'error.type': '503',
    });
  });

  it('the allowlist refuses any other key, and a listed key with a value outside its form; the log names the key, never the value', async () => {
    const r = await receiver();
    const t = await tracingTo(r, { record_user_id: false });
    const span = t.startCheckSpan({ authorization: `Bearer ${JWT}` });
    const set = span.set.bind(span) as (k: string, v: unknown) => void;
    set('http.request.header.authorization', `Bearer ${JWT}`);
    set('portcullis.api_key', API_KEY);
    set('constructor', 'x');
    set('__proto__', 'x');
    set('portcullis.reason', JWT);
    set('portcullis.client_id', `${COOKIE} with spaces`);
    set('portcullis.status', '200');
    set('user.id', SUBJECT);
    set('portcullis.route', { toString: () => API_KEY });
    await span.run(
      () =>
        t.withChildSpan(
          'jwks',
          { 'url.full': `https://idp.example/jwks?key=${API_KEY}`, 'server.address': 'idp.example' } as SpanAttributes,
          async (c) => {
            (c.set as (k: string, v: unknown) => void)('http.response.body', JWT);
          },
        ),
      undefined,
    );
    span.end();
    const spans = await r.waitForSpans(2);
    expect(only(spans, CHECK).attributes).toEqual({
      'rpc.system.name': 'grpc',
      'rpc.method': CHECK,
      'rpc.status_code': 'OK',
    });
    expect(only(spans, 'GET jwks').attributes).toEqual({
      'http.request.method': 'GET',
      'server.address': 'idp.example',
    });
    const warned = t.lines.filter((l) => l.level === 40).map((l) => l.attribute);
    expect(warned).toEqual([
      'http.request.header.authorization',
      'portcullis.api_key',
      'constructor',
      '__proto__',
      'portcullis.reason',
      'portcullis.client_id',
      'portcullis.status',
      'user.id',
      'portcullis.route',
      'url.full',
      'http.response.body',
    ]);
    const logged = JSON.stringify(t.lines);
    for (const secret of [JWT, API_KEY, COOKIE, SUBJECT]) expect(logged).not.toContain(secret);
  });

  it('no credential reaches the collector: a Check carrying a JWT, an API key and a cookie, exported as JSON and as protobuf', async () => {
    for (const protocol of ['http/json', 'http/protobuf'] as const) {
      const r = await receiver();
      const t = await tracingTo(r, { protocol });
      const headers = {
        authorization: `Bearer ${JWT}`,
        'x-api-key': API_KEY,
        cookie: COOKIE,
        traceparent: TRACEPARENT,
        tracestate: 'envoy=1',
        ':path': `/v1/orders?api_key=${API_KEY}`,
      };
      const md = new Metadata();
      md.set('authorization', `Bearer ${JWT}`);
      await check(
        t,
        headers,
        async () => {
          await t.withChildSpan('introspection', { 'server.address': 'idp.example', 'server.port': 443 }, async (c) =>
            c.set('http.response.status_code', 200),
          );
          await t.withChildSpan(
            'redis',
            { 'db.operation.name': 'EVALSHA', 'server.address': '127.0.0.1', 'server.port': 6379 },
            async () => 'OK',
          );
        },
        { ...allow, identity: { method: 'oauth2', clientId: 'web-app', subject: SUBJECT } },
        md,
      );
      await check(t, headers, async () => 0, {
        allowed: false,
        status: 401,
        reason: 'api_key_unknown',
        credential: 'api-key',
      });
      await t.shutdown(3000);
      const spans = r.spans();
      expect(spans, protocol).toHaveLength(4);
      expect(
        r.requests.every(
          (q) => q.contentType === (protocol === 'http/json' ? 'application/json' : 'application/x-protobuf'),
        ),
      ).toBe(true);
      const raw = r.rawBytes();
      for (const secret of [JWT, API_KEY, COOKIE, SUBJECT, 'Bearer']) {
        expect(raw.includes(Buffer.from(secret)), `${secret} in the ${protocol} export`).toBe(false);
      }
      // The decoded spans agree: what the test found missing is really missing, not undecoded.
      expect(spans.map((s) => s.name).sort()).toEqual(['EVALSHA', CHECK, CHECK, 'POST introspection'].sort());
    }
  });
});

describe('child spans', () => {
  it('nest under their own Check across awaits, with two Checks interleaved', async () => {
    const r = await receiver();
    const t = await tracingTo(r);
    const work = (label: string, delay: number) => async () => {
      await sleep(delay);
      await t.withChildSpan('jwks', { 'server.address': `${label}.example` }, async () => sleep(delay));
      await Promise.resolve();
      await t.withChildSpan('redis', { 'db.operation.name': 'GET' }, async () => sleep(1));
      return label;
    };
    const results = await Promise.all([
      check(t, { traceparent: TRACEPARENT }, work('a', 15)),
      check(t, { traceparent: `00-${'c'.repeat(32)}-${'d'.repeat(16)}-01` }, work('b', 5)),
    ]);
    expect(results).toEqual(['a', 'b']);
    const spans = await r.waitForSpans(6);
    for (const [label, traceId] of [
      ['a', TRACE_ID],
      ['b', 'c'.repeat(32)],
    ]) {
      const checkSpan = spans.find((s) => s.name === CHECK && s.traceId === traceId)!;
      const children = spans.filter((s) => s.parentSpanId === checkSpan.spanId);
      expect(children.map((c) => c.name).sort()).toEqual(['GET', 'GET jwks']);
      expect(children.every((c) => c.traceId === traceId && c.kind === 3)).toBe(true);
      expect(children.find((c) => c.name === 'GET jwks')!.attributes).toEqual({
        'http.request.method': 'GET',
        'server.address': `${label}.example`,
      });
      expect(children.find((c) => c.name === 'GET')!.attributes).toEqual({
        'db.system.name': 'redis',
        'db.operation.name': 'GET',
      });
    }
  });

  it("a failing call: the rejection passes through unchanged, the span is an error with the error's code, never its message", async () => {
    const r = await receiver();
    const t = await tracingTo(r);
    const failure = Object.assign(new Error(`connect ECONNREFUSED https://idp.example/introspect?token=${JWT}`), {
      code: 'ECONNREFUSED',
    });
    const seen = await check(t, {}, () =>
      t.withChildSpan('introspection', undefined, async () => Promise.reject(failure)).catch((e: unknown) => e),
    );
    expect(seen).toBe(failure);
    const spans = await r.waitForSpans(2);
    expect(only(spans, 'POST introspection')).toMatchObject({
      statusCode: 2,
      attributes: { 'error.type': 'ECONNREFUSED', 'http.request.method': 'POST' },
    });
    expect(r.rawBytes().includes(JWT)).toBe(false);
  });

  it('outside a Check (a background refresh) or under an unsampled Check, no span is made and the work still runs', async () => {
    const r = await receiver();
    const t = await tracingTo(r, { sample_ratio: 0, parent_based: false });
    expect(await t.withChildSpan('jwks', undefined, async (s) => s.recording)).toBe(false);
    expect(await check(t, {}, () => t.withChildSpan('jwks', undefined, async (s) => s.recording))).toBe(false);
    await t.shutdown(2000);
    expect(r.requests).toHaveLength(0);
  });
});

describe('sampling', () => {
  it('ratio 0 exports nothing, ratio 1 everything; with parent_based the caller decides for the Checks that carry a trace context', async () => {
    const sampled = TRACEPARENT;
    const notSampled = `00-${TRACE_ID}-${PARENT_ID}-00`;
    const count = async (cfg: Omit<TracingConfigInput, 'enabled'>, headers: Record<string, string>, n = 50) => {
      const r = await receiver();
      const t = await tracingTo(r, cfg);
      let recording = 0;
      for (let i = 0; i < n; i++) {
        const span = t.startCheckSpan(headers);
        if (span.recording) recording++;
        span.setDecision(allow);
        span.end();
      }
      await t.shutdown(3000);
      expect(r.spans().length).toBe(recording);
      return recording;
    };
    expect(await count({ sample_ratio: 0 }, {})).toBe(0);
    expect(await count({ sample_ratio: 1 }, {})).toBe(50);
    expect(await count({ sample_ratio: 0 }, { traceparent: sampled })).toBe(50);
    expect(await count({ sample_ratio: 0, parent_based: false }, { traceparent: sampled })).toBe(0);
    expect(await count({ sample_ratio: 1 }, { traceparent: notSampled })).toBe(0);
    expect(await count({ sample_ratio: 1, parent_based: false }, { traceparent: notSampled })).toBe(50);
    // In between, by trace id: roughly the ratio of 400 new traces.
    const some = await count({ sample_ratio: 0.25 }, {}, 400);
    expect(some).toBeGreaterThan(50);
    expect(some).toBeLessThan(150);
  });
});

describe('a collector that is down, hangs or fails', () => {
  /** Start/end of `n` Checks, the work run inside each; per-Check wall time in µs. */
  async function checkTimes(t: Tracing, n: number): Promise<number[]> {
    const times: number[] = [];
    const work = (x: number) => x + 1;
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const span = t.startCheckSpan({ traceparent: TRACEPARENT });
      const out = span.run(work, i);
      span.setDecision(allow);
      span.end();
      times.push((performance.now() - t0) * 1000);
      if (out !== i + 1) throw new Error('the work result changed');
      // Let the export timers and sockets run between Checks, as they would between requests.
      if (i % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
    }
    return times;
  }
  const percentile = (xs: number[], p: number) =>
    [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

  let unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  beforeAll(() => process.on('unhandledRejection', onUnhandled));
  afterAll(() => process.off('unhandledRejection', onUnhandled));

  it('down, hanging or answering 500: the work and its result are untouched, spans are dropped and counted, one warning', async () => {
    for (const mode of ['down', 'hanging', '500'] as const) {
      unhandled = [];
      const r = await receiver(mode);
      const dropped = { queue_full: 0, export_failed: 0 };
      const t = await tracingTo(
        r,
        { batch: { max_queue_size: 64, max_export_batch_size: 16, export_timeout_ms: 200 } },
        { onSpansDropped: (n, why) => (dropped[why] += n) },
      );
      for (let round = 0; round < 3; round++) {
        const results = await Promise.all(
          Array.from({ length: 100 }, (_, i) => check(t, { traceparent: TRACEPARENT }, async () => i * 2)),
        );
        expect(results).toEqual(Array.from({ length: 100 }, (_, i) => i * 2));
        await sleep(300);
      }
      expect(dropped.queue_full + dropped.export_failed, mode).toBeGreaterThan(0);
      if (mode !== 'down') expect(r.requests.length, mode).toBeGreaterThan(0);
      // 300 Checks, several export failures, but one warning a minute.
      const warnings = t.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('tracing: spans dropped'));
      expect(warnings, mode).toHaveLength(1);
      expect(warnings[0]).toMatchObject({
        endpoint: r.url,
        reason: expect.stringMatching(/^(queue_full|export_failed)$/),
      });
      expect(unhandled, mode).toEqual([]);
    }
  });

  it('a full queue drops what does not fit, counted as queue_full, while the collector hangs', async () => {
    const r = await receiver('hanging');
    const dropped = { queue_full: 0, export_failed: 0 };
    const t = await tracingTo(
      r,
      { batch: { max_queue_size: 32, max_export_batch_size: 8, export_timeout_ms: 5000 } },
      { onSpansDropped: (n, why) => (dropped[why] += n) },
    );
    await checkTimes(t, 500);
    await r.waitForRequests(1);
    // One batch of 8 in the hanging export, 32 queued: the rest were dropped as they ended.
    expect(dropped.queue_full).toBeGreaterThanOrEqual(500 - 8 - 32);
  });

  it('adds no latency to the Check path: p99 of start/end with a hanging or down collector is within noise of a working one', async () => {
    const normal = await receiver('normal');
    const hanging = await receiver('hanging');
    const down = await receiver('down');
    const cfg = { batch: { max_queue_size: 256, max_export_batch_size: 64, export_timeout_ms: 300 } };
    const tracings = {
      normal: await tracingTo(normal, cfg),
      hanging: await tracingTo(hanging, cfg),
      down: await tracingTo(down, cfg),
    };
    const times: Record<keyof typeof tracings, number[]> = { normal: [], hanging: [], down: [] };
    for (const t of Object.values(tracings)) await checkTimes(t, 1000);
    // Interleaved rounds, so a burst of load from elsewhere on the machine falls on all three.
    for (let round = 0; round < 8; round++) {
      for (const [name, t] of Object.entries(tracings) as Array<[keyof typeof tracings, Tracing]>)
        times[name].push(...(await checkTimes(t, 1000)));
    }
    const p99 = {
      normal: percentile(times.normal, 0.99),
      hanging: percentile(times.hanging, 0.99),
      down: percentile(times.down, 0.99),
    };
    const median = {
      normal: percentile(times.normal, 0.5),
      hanging: percentile(times.hanging, 0.5),
      down: percentile(times.down, 0.5),
    };
    console.log(`start/end per Check, µs: p50 ${JSON.stringify(median)} p99 ${JSON.stringify(p99)}`);
    expect(normal.requests.length).toBeGreaterThan(0);
    expect(hanging.requests.length).toBeGreaterThan(0);
    for (const mode of ['hanging', 'down'] as const) {
      expect(p99[mode], `${mode} p99 ${p99[mode]} µs vs normal ${p99.normal} µs`).toBeLessThan(
        Math.max(p99.normal * 2, p99.normal + 100),
      );
      expect(median[mode]).toBeLessThan(Math.max(median.normal * 2, median.normal + 10));
    }
  });

  it('shutdown is bounded when the collector hangs, and says the last spans are lost', async () => {
    const r = await receiver('hanging');
    const t = await tracingTo(r, { batch: { export_timeout_ms: 30_000, schedule_delay_ms: 5000 } });
    for (let i = 0; i < 20; i++) await check(t, {}, async () => i);
    const t0 = performance.now();
    await t.shutdown(400);
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(390);
    expect(took).toBeLessThan(1500);
    await r.waitForRequests(1);
    expect(
      t.lines.some(
        (l) =>
          l.msg ===
          'tracing: the collector did not take the last spans before shutdown; they are lost (is the collector up at this endpoint?)',
      ),
    ).toBe(true);
    // A second shutdown is a no-op.
    const t1 = performance.now();
    await t.shutdown(400);
    expect(performance.now() - t1).toBeLessThan(50);
  });

  it('a working collector: shutdown exports what is queued, and exported spans are counted', async () => {
    const r = await receiver('normal');
    let exported = 0;
    const t = await tracingTo(r, { batch: { schedule_delay_ms: 60_000 } }, { onSpansExported: (n) => (exported += n) });
    for (let i = 0; i < 10; i++) await check(t, {}, async () => i);
    expect(r.requests).toHaveLength(0);
    await t.shutdown(3000);
    expect(r.spans()).toHaveLength(10);
    expect(exported).toBe(10);
  });
});

describe('the test receiver', () => {
  it('decodes the same spans alike from JSON and from protobuf', async () => {
    const decoded: Record<string, unknown[]> = {};
    for (const protocol of ['http/json', 'http/protobuf'] as const) {
      const r = await receiver();
      const t = await tracingTo(r, {
        protocol,
        record_user_id: true,
        resource_attributes: { 'deployment.environment.name': 'test' },
      });
      await check(
        t,
        { traceparent: TRACEPARENT, tracestate: 'a=1' },
        () => t.withChildSpan('redis', { 'db.operation.name': 'EVALSHA', 'server.port': 6379 }, async () => 0),
        allow,
      );
      await t.shutdown(3000);
      decoded[protocol] = r.spans().map(({ spanId: _s, parentSpanId, ...rest }) => ({
        ...rest,
        hasParent: parentSpanId !== '',
        resource: { ...rest.resource },
      }));
    }
    expect(decoded['http/json']).toHaveLength(2);
    expect(decoded['http/protobuf']).toEqual(decoded['http/json']);
  });
});
