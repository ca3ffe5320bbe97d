// The tracing: config section and the OTEL_* variables (src/telemetry/config.ts): off unless the
// config turns it on, config before environment before default, a wrong variable is an error that
// names it, and every option of the schema is described.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  resolveTracing,
  tracingSchema,
  TracingConfigError,
  type TracingConfigInput,
  type TracingSettings,
} from '../../src/telemetry/config.ts';

const on = (cfg: Omit<TracingConfigInput, 'enabled'> = {}, env: Record<string, string> = {}): TracingSettings => {
  const r = resolveTracing(tracingSchema.parse({ enabled: true, ...cfg }), env);
  if (!r.enabled) throw new Error('expected tracing on');
  return r;
};

const errorOf = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TracingConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a TracingConfigError');
};

describe('tracing config: on and off', () => {
  it('is off by default, and OTEL_* variables alone do not turn it on', () => {
    expect(resolveTracing(undefined, {})).toEqual({ enabled: false, why: 'config' });
    expect(
      resolveTracing(tracingSchema.parse({}), {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_TRACES_SAMPLER: 'always_on',
      }),
    ).toEqual({
      enabled: false,
      why: 'config',
    });
  });

  it('OTEL_SDK_DISABLED=true turns it off although the config turns it on (any case); other values do not', () => {
    expect(resolveTracing(tracingSchema.parse({ enabled: true }), { OTEL_SDK_DISABLED: 'TRUE' })).toEqual({
      enabled: false,
      why: 'OTEL_SDK_DISABLED',
    });
    expect(resolveTracing(tracingSchema.parse({ enabled: true }), { OTEL_SDK_DISABLED: 'false' }).enabled).toBe(true);
    expect(resolveTracing(tracingSchema.parse({ enabled: true }), { OTEL_SDK_DISABLED: '1' }).enabled).toBe(true);
  });

  it('with tracing off, a wrong OTEL_* variable cannot stop a start', () => {
    expect(
      resolveTracing(tracingSchema.parse({}), { OTEL_TRACES_SAMPLER: 'nonsense', OTEL_BSP_MAX_QUEUE_SIZE: '-1' })
        .enabled,
    ).toBe(false);
  });

  it('defaults: localhost:4318, protobuf, every Check sampled unless the caller says otherwise, w3c then b3', () => {
    const s = on();
    expect(s).toMatchObject({
      endpoint: 'http://localhost:4318/v1/traces',
      protocol: 'http/protobuf',
      sampleRatio: 1,
      parentBased: true,
      serviceName: 'portcullis',
      propagators: ['w3c', 'b3'],
      recordUserId: false,
      batch: { maxQueueSize: 2048, maxExportBatchSize: 512, scheduleDelayMs: 5000, exportTimeoutMs: 10000 },
    });
    expect(Object.values(s.sources).every((v) => v === 'default')).toBe(true);
  });
});

describe('tracing config: precedence', () => {
  it('endpoint: config, else OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces', () => {
    const env = {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:4318/custom/path',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:4318/prefix/',
    };
    expect(on({ otlp_endpoint: 'https://mine:4318' }, env)).toMatchObject({
      endpoint: 'https://mine:4318/v1/traces',
      sources: { endpoint: 'config' },
    });
    expect(on({ otlp_endpoint: 'https://mine:4318/otlp/v1/traces' }, env).endpoint).toBe(
      'https://mine:4318/otlp/v1/traces',
    );
    expect(on({}, env)).toMatchObject({
      endpoint: 'http://traces:4318/custom/path',
      sources: { endpoint: 'env:OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' },
    });
    expect(on({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:4318/prefix/' }).endpoint).toBe(
      'http://base:4318/prefix/v1/traces',
    );
    expect(on({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:4318' }).endpoint).toBe('http://base:4318/v1/traces');
    // Empty is unset (the OTel spec).
    expect(
      on({}, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:4318' }).endpoint,
    ).toBe('http://base:4318/v1/traces');
  });

  it('protocol: config, else OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL', () => {
    expect(on({ protocol: 'http/json' }, { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }).protocol).toBe(
      'http/json',
    );
    expect(
      on({}, { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' })
        .protocol,
    ).toBe('http/json');
    expect(on({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).protocol).toBe('http/json');
  });

  it('OTEL_TRACES_SAMPLER and _ARG map to sample_ratio and parent_based; a config value replaces its half', () => {
    const cases: Array<[Record<string, string>, number, boolean]> = [
      [{ OTEL_TRACES_SAMPLER: 'always_on' }, 1, false],
      [{ OTEL_TRACES_SAMPLER: 'always_off' }, 0, false],
      [{ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }, 0.25, false],
      [{ OTEL_TRACES_SAMPLER: 'traceidratio' }, 1, false],
      [{ OTEL_TRACES_SAMPLER: 'parentbased_always_on' }, 1, true],
      [{ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }, 0, true],
      [{ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.01' }, 0.01, true],
    ];
    for (const [env, ratio, parentBased] of cases) {
      expect(on({}, env), JSON.stringify(env)).toMatchObject({
        sampleRatio: ratio,
        parentBased,
        sources: { sampler: 'env:OTEL_TRACES_SAMPLER' },
      });
    }
    const env = { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' };
    expect(on({ sample_ratio: 0.1 }, env)).toMatchObject({ sampleRatio: 0.1, parentBased: true });
    expect(on({ parent_based: false }, env)).toMatchObject({ sampleRatio: 0.5, parentBased: false });
    expect(on({ sample_ratio: 0, parent_based: false }, env)).toMatchObject({
      sampleRatio: 0,
      parentBased: false,
      sources: { sampler: 'config' },
    });
  });

  it('service name: config, else OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES; resource attributes merge, config winning', () => {
    const env = {
      OTEL_SERVICE_NAME: 'from-env',
      OTEL_RESOURCE_ATTRIBUTES:
        'service.name=from-attrs,deployment.environment.name=prod,team=a%2Cb%20c, k8s.pod.name = p-1 ',
    };
    expect(on({ service_name: 'from-config', resource_attributes: { team: 'mine' } }, env)).toMatchObject({
      serviceName: 'from-config',
      resourceAttributes: {
        'service.name': 'from-config',
        'deployment.environment.name': 'prod',
        team: 'mine',
        'k8s.pod.name': 'p-1',
      },
    });
    expect(on({}, env)).toMatchObject({
      serviceName: 'from-env',
      resourceAttributes: { 'service.name': 'from-env', team: 'a,b c' },
    });
    expect(on({}, { OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs' })).toMatchObject({
      serviceName: 'from-attrs',
      sources: { serviceName: 'env:OTEL_RESOURCE_ATTRIBUTES' },
    });
  });

  it('propagators: config, else OTEL_PROPAGATORS (tracecontext, b3, b3multi; baggage ignored; none)', () => {
    expect(on({ propagators: ['b3'] }, { OTEL_PROPAGATORS: 'tracecontext' }).propagators).toEqual(['b3']);
    expect(on({ propagators: [] }).propagators).toEqual([]);
    expect(on({}, { OTEL_PROPAGATORS: 'b3multi, tracecontext,baggage,b3' }).propagators).toEqual(['b3', 'w3c']);
    expect(on({}, { OTEL_PROPAGATORS: 'tracecontext,none' }).propagators).toEqual([]);
  });

  it('batch: config, else OTEL_BSP_*; the export timeout falls back to the exporter timeout variables', () => {
    const env = {
      OTEL_BSP_MAX_QUEUE_SIZE: '100',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '10',
      OTEL_BSP_SCHEDULE_DELAY: '250',
      OTEL_EXPORTER_OTLP_TIMEOUT: '3000',
    };
    expect(on({}, env).batch).toEqual({
      maxQueueSize: 100,
      maxExportBatchSize: 10,
      scheduleDelayMs: 250,
      exportTimeoutMs: 3000,
    });
    expect(
      on({ batch: { max_queue_size: 50, export_timeout_ms: 700 } }, { ...env, OTEL_BSP_EXPORT_TIMEOUT: '900' }).batch,
    ).toEqual({
      maxQueueSize: 50,
      maxExportBatchSize: 10,
      scheduleDelayMs: 250,
      exportTimeoutMs: 700,
    });
    expect(
      on({}, { OTEL_BSP_EXPORT_TIMEOUT: '900', OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '800' }).batch.exportTimeoutMs,
    ).toBe(900);
    expect(
      on({}, { OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '800', OTEL_EXPORTER_OTLP_TIMEOUT: '700' }).batch.exportTimeoutMs,
    ).toBe(800);
  });
});

describe('tracing config: errors name what is wrong', () => {
  it('a wrong OTEL_* variable is an error naming it, with the value bounded', () => {
    expect(errorOf(() => on({}, { OTEL_TRACES_SAMPLER: 'jaeger_remote' }))).toMatch(
      /^OTEL_TRACES_SAMPLER="jaeger_remote" is not one of always_on/,
    );
    expect(errorOf(() => on({}, { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' }))).toMatch(
      /^OTEL_TRACES_SAMPLER_ARG="1.5" is not a ratio/,
    );
    expect(errorOf(() => on({}, { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: 'half' }))).toMatch(
      /^OTEL_TRACES_SAMPLER_ARG/,
    );
    expect(errorOf(() => on({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }))).toMatch(
      /^OTEL_EXPORTER_OTLP_PROTOCOL="grpc" .*OTLP\/gRPC is not supported.*4318/,
    );
    expect(errorOf(() => on({}, { OTEL_PROPAGATORS: 'tracecontext,xray' }))).toMatch(/^OTEL_PROPAGATORS has "xray"/);
    expect(errorOf(() => on({}, { OTEL_BSP_MAX_QUEUE_SIZE: '0' }))).toMatch(
      /^OTEL_BSP_MAX_QUEUE_SIZE="0" must be a whole number from 1 to 65536/,
    );
    expect(errorOf(() => on({}, { OTEL_BSP_SCHEDULE_DELAY: '1e3' }))).toMatch(/^OTEL_BSP_SCHEDULE_DELAY/);
    expect(errorOf(() => on({}, { OTEL_RESOURCE_ATTRIBUTES: 'novalue' }))).toMatch(
      /^OTEL_RESOURCE_ATTRIBUTES must be key=value/,
    );
    expect(errorOf(() => on({}, { OTEL_RESOURCE_ATTRIBUTES: 'a=%E0%A4%A' }))).toMatch(
      /the value of a is not valid percent-encoding/,
    );
    const long = `x${'y'.repeat(500)}`;
    expect(errorOf(() => on({}, { OTEL_TRACES_SAMPLER: long })).length).toBeLessThan(300);
  });

  it('an endpoint with credentials is refused without printing it', () => {
    const msg = errorOf(() => on({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://user:s3cret-token@collector:4318' }));
    expect(msg).toMatch(
      /^OTEL_EXPORTER_OTLP_ENDPOINT must not carry a user or password; send collector credentials with OTEL_EXPORTER_OTLP_HEADERS/,
    );
    expect(msg).not.toContain('s3cret-token');
    const parsed = tracingSchema.safeParse({
      enabled: true,
      otlp_endpoint: 'https://user:s3cret-token@collector:4318',
    });
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues[0]).toMatchObject({
      path: ['otlp_endpoint'],
      message: expect.stringMatching(/must not carry a user or password/),
    });
  });

  it('the schema refuses what cannot work: not http(s), a ratio outside 0..1, unknown keys, a repeated propagator', () => {
    for (const bad of [
      { otlp_endpoint: 'grpc://collector:4317' },
      { otlp_endpoint: 'not a url' },
      { otlp_endpoint: 'http://collector:4318/v1/traces?token=x' },
      { sample_ratio: 1.5 },
      { sample_ratio: -0.1 },
      { propagators: ['w3c', 'w3c'] },
      { propagators: ['jaeger'] },
      { protocol: 'grpc' },
      { exporter: 'zipkin' },
      { batch: { max_queue_size: 0 } },
      { batch: { unknown: 1 } },
    ]) {
      expect(tracingSchema.safeParse({ enabled: true, ...bad }).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it('a batch larger than the queue is an error saying where each number came from; the default batch size follows a smaller queue', () => {
    expect(on({ batch: { max_queue_size: 100 } }).batch).toMatchObject({ maxQueueSize: 100, maxExportBatchSize: 100 });
    expect(errorOf(() => on({ batch: { max_export_batch_size: 600 } }, { OTEL_BSP_MAX_QUEUE_SIZE: '500' }))).toBe(
      'tracing.batch.max_export_batch_size (600, from config) is larger than max_queue_size (500, from env:OTEL_BSP_MAX_QUEUE_SIZE): a batch is taken from the queue',
    );
  });

  it('every option is described', () => {
    const missing: string[] = [];
    const walk = (node: unknown, path: string): void => {
      if (node === null || typeof node !== 'object') return;
      const props = (node as { properties?: Record<string, { description?: string }> }).properties;
      for (const [k, v] of Object.entries(props ?? {})) {
        if (!v.description) missing.push(`${path}${k}`);
        walk(v, `${path}${k}.`);
      }
    };
    walk(z.toJSONSchema(tracingSchema, { io: 'input' }), 'tracing.');
    expect(missing).toEqual([]);
  });
});
