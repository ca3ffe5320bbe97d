// A local OTLP/HTTP trace receiver in the test process: what a collector's otlp receiver does on
// port 4318, enough to see what Portcullis exports. It keeps every request's raw bytes (to search
// them for secrets) and decodes them, JSON (application/json) or protobuf (application/x-protobuf),
// into flat spans. Modes stand for the collector's failures: normal, down (port closed), hanging
// (accepts the request, never answers) and 500.
//
// Protobuf is decoded by protobufjs with the OTLP trace messages declared below (field numbers of
// opentelemetry-proto, opentelemetry/proto/{common,resource,trace}/v1 and
// collector/trace/v1/trace_service.proto). test/telemetry/tracing.test.ts decodes the same spans
// sent as JSON and as protobuf and requires both to agree, so a wrong declaration here fails there.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { gunzipSync } from 'node:zlib';
import protobuf from 'protobufjs';
import { restartablePort } from './ports.ts';

export type ReceiverMode = 'normal' | 'down' | 'hanging' | '500';

export interface ReceivedRequest {
  path: string;
  contentType: string;
  /** The body as sent (before any gunzip). */
  raw: Buffer;
}

export interface ExportedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  traceState: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  kind: number;
  attributes: Record<string, unknown>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  resource: Record<string, unknown>;
  scope: string;
}

const TRACE_PROTO = {
  nested: {
    AnyValue: {
      oneofs: {
        value: {
          oneof: ['stringValue', 'boolValue', 'intValue', 'doubleValue', 'arrayValue', 'kvlistValue', 'bytesValue'],
        },
      },
      fields: {
        stringValue: { type: 'string', id: 1 },
        boolValue: { type: 'bool', id: 2 },
        intValue: { type: 'int64', id: 3 },
        doubleValue: { type: 'double', id: 4 },
        arrayValue: { type: 'ArrayValue', id: 5 },
        kvlistValue: { type: 'KeyValueList', id: 6 },
        bytesValue: { type: 'bytes', id: 7 },
      },
    },
    ArrayValue: { fields: { values: { rule: 'repeated', type: 'AnyValue', id: 1 } } },
    KeyValueList: { fields: { values: { rule: 'repeated', type: 'KeyValue', id: 1 } } },
    KeyValue: { fields: { key: { type: 'string', id: 1 }, value: { type: 'AnyValue', id: 2 } } },
    InstrumentationScope: {
      fields: {
        name: { type: 'string', id: 1 },
        version: { type: 'string', id: 2 },
        attributes: { rule: 'repeated', type: 'KeyValue', id: 3 },
        droppedAttributesCount: { type: 'uint32', id: 4 },
      },
    },
    Resource: {
      fields: {
        attributes: { rule: 'repeated', type: 'KeyValue', id: 1 },
        droppedAttributesCount: { type: 'uint32', id: 2 },
      },
    },
    Status: { fields: { message: { type: 'string', id: 2 }, code: { type: 'int32', id: 3 } } },
    Event: {
      fields: {
        timeUnixNano: { type: 'fixed64', id: 1 },
        name: { type: 'string', id: 2 },
        attributes: { rule: 'repeated', type: 'KeyValue', id: 3 },
        droppedAttributesCount: { type: 'uint32', id: 4 },
      },
    },
    Link: {
      fields: {
        traceId: { type: 'bytes', id: 1 },
        spanId: { type: 'bytes', id: 2 },
        traceState: { type: 'string', id: 3 },
        attributes: { rule: 'repeated', type: 'KeyValue', id: 4 },
        droppedAttributesCount: { type: 'uint32', id: 5 },
        flags: { type: 'fixed32', id: 6 },
      },
    },
    Span: {
      fields: {
        traceId: { type: 'bytes', id: 1 },
        spanId: { type: 'bytes', id: 2 },
        traceState: { type: 'string', id: 3 },
        parentSpanId: { type: 'bytes', id: 4 },
        name: { type: 'string', id: 5 },
        kind: { type: 'int32', id: 6 },
        startTimeUnixNano: { type: 'fixed64', id: 7 },
        endTimeUnixNano: { type: 'fixed64', id: 8 },
        attributes: { rule: 'repeated', type: 'KeyValue', id: 9 },
        droppedAttributesCount: { type: 'uint32', id: 10 },
        events: { rule: 'repeated', type: 'Event', id: 11 },
        droppedEventsCount: { type: 'uint32', id: 12 },
        links: { rule: 'repeated', type: 'Link', id: 13 },
        droppedLinksCount: { type: 'uint32', id: 14 },
        status: { type: 'Status', id: 15 },
        flags: { type: 'fixed32', id: 16 },
      },
    },
    ScopeSpans: {
      fields: {
        scope: { type: 'InstrumentationScope', id: 1 },
        spans: { rule: 'repeated', type: 'Span', id: 2 },
        schemaUrl: { type: 'string', id: 3 },
      },
    },
    ResourceSpans: {
      fields: {
        resource: { type: 'Resource', id: 1 },
        scopeSpans: { rule: 'repeated', type: 'ScopeSpans', id: 2 },
        schemaUrl: { type: 'string', id: 3 },
      },
    },
    ExportTraceServiceRequest: { fields: { resourceSpans: { rule: 'repeated', type: 'ResourceSpans', id: 1 } } },
  },
};

const exportRequest = protobuf.Root.fromJSON(TRACE_PROTO).lookupType('ExportTraceServiceRequest');

// Both decoders produce this shape (the protobuf JSON mapping, ids as in the source).
interface AnyValueJson {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: AnyValueJson[] };
}
interface KeyValueJson {
  key: string;
  value?: AnyValueJson;
}
interface RequestJson {
  resourceSpans?: Array<{
    resource?: { attributes?: KeyValueJson[] };
    scopeSpans?: Array<{
      scope?: { name?: string };
      spans?: Array<{
        traceId?: string | Uint8Array;
        spanId?: string | Uint8Array;
        parentSpanId?: string | Uint8Array;
        traceState?: string;
        name?: string;
        kind?: number;
        attributes?: KeyValueJson[];
        status?: { code?: number };
      }>;
    }>;
  }>;
}

function anyValue(v: AnyValueJson | undefined): unknown {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(anyValue);
  return undefined;
}

function attributes(list: KeyValueJson[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list ?? []) out[kv.key] = anyValue(kv.value);
  return out;
}

/** OTLP/JSON carries ids as hex strings; protobuf as bytes. */
function id(v: string | Uint8Array | undefined): string {
  if (v === undefined) return '';
  return typeof v === 'string' ? v.toLowerCase() : Buffer.from(v).toString('hex');
}

/** The spans in one export request body, JSON or protobuf by content type. */
export function decodeExport(contentType: string, body: Buffer): ExportedSpan[] {
  const request: RequestJson = contentType.startsWith('application/json')
    ? (JSON.parse(body.toString('utf8')) as RequestJson)
    : exportRequest.toObject(exportRequest.decode(body), { longs: String, defaults: false });
  const out: ExportedSpan[] = [];
  for (const rs of request.resourceSpans ?? []) {
    const resource = attributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: id(s.traceId),
          spanId: id(s.spanId),
          parentSpanId: id(s.parentSpanId),
          traceState: s.traceState ?? '',
          name: s.name ?? '',
          kind: s.kind ?? 0,
          attributes: attributes(s.attributes),
          statusCode: s.status?.code ?? 0,
          resource,
          scope: ss.scope?.name ?? '',
        });
      }
    }
  }
  return out;
}

export class OtlpReceiver {
  readonly requests: ReceivedRequest[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly hanging = new Set<ServerResponse>();
  private waiters: Array<() => void> = [];

  private constructor(
    readonly port: number,
    private modeNow: ReceiverMode,
  ) {}

  /** A receiver on a port of its own; in mode `down` the port is reserved but nothing listens. */
  static async start(mode: ReceiverMode = 'normal'): Promise<OtlpReceiver> {
    const r = new OtlpReceiver(await restartablePort(), mode);
    if (mode !== 'down') await r.listen();
    return r;
  }

  get mode(): ReceiverMode {
    return this.modeNow;
  }

  /** The OTLP/HTTP traces URL. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/v1/traces`;
  }

  /** Every span received so far, in arrival order. */
  spans(): ExportedSpan[] {
    return this.requests
      .filter((r) => r.path === '/v1/traces' && r.raw.length > 0)
      .flatMap((r) => decodeExport(r.contentType, this.body(r)));
  }

  /** Every byte received so far, bodies as sent, gunzipped ones also as inflated. */
  rawBytes(): Buffer {
    return Buffer.concat(this.requests.flatMap((r) => [r.raw, this.body(r)]));
  }

  /** Resolves once at least `n` spans have arrived; rejects after `timeoutMs`. */
  async waitForSpans(n: number, timeoutMs = 10_000): Promise<ExportedSpan[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const spans = this.spans();
      if (spans.length >= n) return spans;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`OTLP receiver: ${spans.length} spans after ${timeoutMs} ms, expected ${n}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves once `n` requests have arrived (whatever the mode answered). */
  async waitForRequests(n: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.requests.length < n) {
      if (Date.now() > deadline)
        throw new Error(`OTLP receiver: ${this.requests.length} requests after ${timeoutMs} ms, expected ${n}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async setMode(mode: ReceiverMode): Promise<void> {
    const was = this.modeNow;
    this.modeNow = mode;
    if (mode === 'down' && was !== 'down') await this.close();
    if (mode !== 'down' && was === 'down') await this.listen();
  }

  async stop(): Promise<void> {
    await this.close();
  }

  private body(r: ReceivedRequest): Buffer {
    return r.raw.length >= 2 && r.raw[0] === 0x1f && r.raw[1] === 0x8b ? gunzipSync(r.raw) : r.raw;
  }

  private listen(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  private async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const contentType = String(req.headers['content-type'] ?? '');
      this.requests.push({ path: req.url ?? '', contentType, raw: Buffer.concat(chunks) });
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w();
      if (this.modeNow === 'hanging') {
        this.hanging.add(res);
        return;
      }
      if (this.modeNow === '500') {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('collector failure (test)');
        return;
      }
      // An empty ExportTraceServiceResponse: {} in JSON, zero bytes in protobuf.
      if (contentType.startsWith('application/json'))
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  }
}
