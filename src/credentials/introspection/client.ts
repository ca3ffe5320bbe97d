// One RFC 7662 call: POST form-encoded `token=…` with client authentication, over a kept-alive
// connection, bounded by a timeout and a response size. Returns the raw answer; reading it is
// answer.ts's job. Transport failures throw IntrospectionTransportError (never the token).
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { childSpansOn, serverAttributes, withChildSpan } from '../../telemetry/tracing.ts';

export interface IntrospectionClientOptions {
  endpoint: string;
  clientId: string;
  clientSecret: string;
  authMethod: 'client_secret_basic' | 'client_secret_post';
  timeoutMs: number;
  /** PEM CA bundle for the endpoint's TLS; system CAs when absent. */
  ca?: string;
  maxSockets: number;
}

export interface RawAnswer {
  status: number;
  contentType: string | undefined;
  body: string;
}

export class IntrospectionTransportError extends Error {
  constructor(
    readonly reason: 'introspection_timeout' | 'introspection_unreachable' | 'introspection_response_too_large',
    detail: string,
  ) {
    super(detail);
    this.name = 'IntrospectionTransportError';
  }
}

/** An answer bigger than this is not an introspection answer. */
const MAX_BODY_BYTES = 64 * 1024;

/** RFC 6749 §2.3.1: client_id and secret are form-urlencoded before Basic encoding. */
function formEncode(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, '+');
}

export class IntrospectionClient {
  private readonly url: URL;
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly basic?: string;

  constructor(private readonly opts: IntrospectionClientOptions) {
    this.url = new URL(opts.endpoint);
    const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets, maxFreeSockets: Math.min(opts.maxSockets, 16) };
    // TLS verification stays on: rejectUnauthorized is Node's default and never switched off here.
    this.agent =
      this.url.protocol === 'https:' ? new HttpsAgent({ ...agentOpts, ca: opts.ca }) : new HttpAgent(agentOpts);
    if (opts.authMethod === 'client_secret_basic') {
      this.basic =
        'Basic ' + Buffer.from(`${formEncode(opts.clientId)}:${formEncode(opts.clientSecret)}`).toString('base64');
    }
  }

  /** Under a traced Check, a CLIENT span `POST introspection` with the host and the status (never the token or URL). */
  introspect(token: string): Promise<RawAnswer> {
    if (!childSpansOn()) return this.post(token);
    return withChildSpan('introspection', serverAttributes(this.url), async (span) => {
      const answer = await this.post(token);
      span.set('http.response.status_code', answer.status);
      return answer;
    });
  }

  private post(token: string): Promise<RawAnswer> {
    const form = new URLSearchParams({ token, token_type_hint: 'access_token' });
    if (this.opts.authMethod === 'client_secret_post') {
      form.set('client_id', this.opts.clientId);
      form.set('client_secret', this.opts.clientSecret);
    }
    const body = Buffer.from(form.toString());
    const headers: Record<string, string | number> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
      'content-length': body.length,
    };
    if (this.basic) headers.authorization = this.basic;
    const send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;

    return new Promise<RawAnswer>((resolve, reject) => {
      let settled = false;
      const fail = (reason: IntrospectionTransportError['reason'], detail: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(new IntrospectionTransportError(reason, detail));
      };
      const req = send(this.url, { method: 'POST', headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY_BYTES)
            return fail('introspection_response_too_large', `answer over ${MAX_BODY_BYTES} bytes`);
          chunks.push(c);
        });
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            contentType: res.headers['content-type'],
            body: Buffer.concat(chunks).toString('utf8'),
          });
        });
        res.on('error', (e) => fail('introspection_unreachable', e.message));
      });
      // One deadline for connect + send + answer, not an idle timeout.
      const timer = setTimeout(
        () => fail('introspection_timeout', `no answer within ${this.opts.timeoutMs} ms`),
        this.opts.timeoutMs,
      );
      req.on('error', (e) => fail('introspection_unreachable', (e as NodeJS.ErrnoException).code ?? e.message));
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
