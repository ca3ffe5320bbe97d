// TLS / mTLS for the gRPC listener with certificate reload and no restart.
//
// grpc-js re-reads a ServerCredentials' secure context whenever the credentials call
// updateSecureContextOptions(): the listener then calls setSecureContext() and new connections use
// the new certificate while open ones continue. (grpc-js' own FileWatcherCertificateProvider
// publishes `null` when a read fails, e.g. halfway through a rotation, and the listener then drops
// every new connection; and its factory's argument names are swapped. So this class validates the
// new files first and keeps the previous certificate when they are unreadable or do not match.)
import { unwatchFile, watchFile } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { readTlsFiles, type LoadedTls, type TlsFiles } from '../plumbing/tls-files.ts';

export type { TlsFiles };

export class ReloadingTlsCredentials extends grpc.ServerCredentials {
  private current: LoadedTls;
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
    const first = readTlsFiles(files);
    const mtls = files.client_ca_file !== undefined;
    // requestCert + rejectUnauthorized: with a client CA, a client without a certificate it signed
    // fails the handshake (mTLS); without one, any client may connect over TLS.
    super({ requestCert: mtls, rejectUnauthorized: mtls }, first.options);
    this.current = first;
    if (registry) {
      this.reloads = new Counter({
        name: 'portcullis_tls_reloads_total',
        help: 'gRPC listener certificate reloads by result (success, unchanged, failure)',
        labelNames: ['result'],
        registers: [registry],
      });
      this.notAfter = new Gauge({
        name: 'portcullis_tls_certificate_not_after_seconds',
        help: 'Expiry (Unix time) of the certificate the gRPC listener serves',
        registers: [registry],
      });
      this.notAfter.set(first.notAfterSeconds);
    }
  }

  /** Re-reads the files; swaps them in when they are valid and different. Never throws. */
  reload(): 'success' | 'unchanged' | 'failure' {
    let next: LoadedTls;
    try {
      next = readTlsFiles(this.files);
    } catch (e) {
      this.reloads?.inc({ result: 'failure' });
      this.log?.error(
        {
          cert_file: this.files.cert_file,
          key_file: this.files.key_file,
          client_ca_file: this.files.client_ca_file,
          error: (e as Error).message,
        },
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
    this.log?.info(
      { cert_file: this.files.cert_file, not_after: new Date(next.notAfterSeconds * 1000).toISOString() },
      'TLS certificate reloaded; new connections use it',
    );
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
    return [
      this.files.cert_file,
      this.files.key_file,
      ...(this.files.client_ca_file ? [this.files.client_ca_file] : []),
    ];
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}
