// TLS / mTLS for the gRPC listener with certificate reload and no restart.
//
// grpc-js re-reads a ServerCredentials' secure context whenever the credentials call
// updateSecureContextOptions(): the listener then calls setSecureContext() and new connections use
// the new certificate while open ones continue. (grpc-js' own FileWatcherCertificateProvider
// publishes `null` when a read fails, e.g. halfway through a rotation, and the listener then drops
// every new connection; and its factory's argument names are swapped. So this class validates the
// new files first and keeps the previous certificate when they are unreadable or do not match.)
import { X509Certificate } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';

export interface TlsFiles {
  cert_file: string;
  key_file: string;
  client_ca_file?: string;
}

interface Loaded {
  options: SecureContextOptions;
  fingerprint: string;
  notAfterSeconds: number;
}

function readAndValidate(files: TlsFiles): Loaded {
  const cert = readFileSync(files.cert_file);
  const key = readFileSync(files.key_file);
  const ca = files.client_ca_file ? readFileSync(files.client_ca_file) : undefined;
  const options: SecureContextOptions = { cert, key, ...(ca ? { ca } : {}) };
  // Throws on unparsable PEM and on a key that does not belong to the certificate.
  createSecureContext(options);
  const x509 = new X509Certificate(cert);
  return { options, fingerprint: `${x509.fingerprint256}|${ca?.toString('base64') ?? ''}`, notAfterSeconds: Date.parse(x509.validTo) / 1000 };
}

export class ReloadingTlsCredentials extends grpc.ServerCredentials {
  private current: Loaded;
  private watching = false;
  private pending?: NodeJS.Timeout;
  private readonly reloads?: Counter<'result'>;
  private readonly notAfter?: Gauge;

  /** Reads and checks the files now: a broken file at startup is an error, not a silent plaintext. */
  constructor(
    readonly files: TlsFiles,
    private readonly log?: Logger,
    registry?: Registry,
  ) {
    const first = readAndValidate(files);
    const mtls = files.client_ca_file !== undefined;
    // requestCert + rejectUnauthorized: with a client CA, a client without a certificate it signed
    // fails the handshake (mTLS); without one, any client may connect over TLS.
    super({ requestCert: mtls, rejectUnauthorized: mtls }, first.options);
    this.current = first;
    if (registry) {
      this.reloads = new Counter({ name: 'portcullis_tls_reloads_total', help: 'gRPC listener certificate reloads by result (success, unchanged, failure)', labelNames: ['result'], registers: [registry] });
      this.notAfter = new Gauge({ name: 'portcullis_tls_certificate_not_after_seconds', help: 'Expiry (Unix time) of the certificate the gRPC listener serves', registers: [registry] });
      this.notAfter.set(first.notAfterSeconds);
    }
  }

  /** Re-reads the files; swaps them in when they are valid and different. Never throws. */
  reload(): 'success' | 'unchanged' | 'failure' {
    let next: Loaded;
    try {
      next = readAndValidate(this.files);
    } catch (e) {
      this.reloads?.inc({ result: 'failure' });
      this.log?.error(
        { cert_file: this.files.cert_file, key_file: this.files.key_file, client_ca_file: this.files.client_ca_file, error: (e as Error).message },
        'TLS certificate reload rejected; the previous certificate keeps serving. Check that server.grpc.tls cert_file and key_file are readable PEM and belong together',
      );
      return 'failure';
    }
    if (next.fingerprint === this.current.fingerprint) {
      this.reloads?.inc({ result: 'unchanged' });
      return 'unchanged';
    }
    this.current = next;
    this.updateSecureContextOptions(next.options);
    this.reloads?.inc({ result: 'success' });
    this.notAfter?.set(next.notAfterSeconds);
    this.log?.info({ cert_file: this.files.cert_file, not_after: new Date(next.notAfterSeconds * 1000).toISOString() }, 'TLS certificate reloaded; new connections use it');
    return 'success';
  }

  /** Polls the files (stat follows symlinks, so Kubernetes Secret volume swaps are seen). */
  watch(intervalMs: number): void {
    if (this.watching || intervalMs <= 0) return;
    this.watching = true;
    for (const f of this.paths()) {
      watchFile(f, { interval: intervalMs, persistent: false }, (cur, prev) => {
        if (cur.mtimeMs === prev.mtimeMs && cur.size === prev.size && cur.ino === prev.ino) return;
        // Cert and key are usually replaced one after the other: settle before reading the pair.
        clearTimeout(this.pending);
        this.pending = setTimeout(() => this.reload(), 200);
        this.pending.unref();
      });
    }
  }

  unwatch(): void {
    if (!this.watching) return;
    this.watching = false;
    clearTimeout(this.pending);
    for (const f of this.paths()) unwatchFile(f);
  }

  private paths(): string[] {
    return [this.files.cert_file, this.files.key_file, ...(this.files.client_ca_file ? [this.files.client_ca_file] : [])];
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}
