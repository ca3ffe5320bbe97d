// A certificate, its key and an optional client CA, read from files and checked to belong together:
// what the gRPC listener serves (src/envoy/tls-credentials.ts) and what preflight checks before
// `serve` starts (src/runtime/preflight.ts), read the same way by both.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext, type SecureContextOptions } from 'node:tls';

export interface TlsFiles {
  cert_file: string;
  key_file: string;
  client_ca_file?: string;
}

export interface LoadedTls {
  options: SecureContextOptions;
  /** Changes when the certificate or the client CA does. */
  fingerprint: string;
  notAfterSeconds: number;
}

/** The files with relative paths resolved against `dir` (the config file's folder). */
export function absoluteTlsFiles(tls: TlsFiles, dir = '.'): TlsFiles {
  const abs = (f: string) => resolve(dir, f);
  return {
    cert_file: abs(tls.cert_file),
    key_file: abs(tls.key_file),
    ...(tls.client_ca_file ? { client_ca_file: abs(tls.client_ca_file) } : {}),
  };
}

/** Reads the files; throws on an unreadable file, unparsable PEM, or a key that is not the certificate's. */
export function readTlsFiles(files: TlsFiles): LoadedTls {
  const cert = readFileSync(files.cert_file);
  const key = readFileSync(files.key_file);
  const ca = files.client_ca_file ? readFileSync(files.client_ca_file) : undefined;
  const options: SecureContextOptions = { cert, key, ...(ca ? { ca } : {}) };
  createSecureContext(options);
  const x509 = new X509Certificate(cert);
  return {
    options,
    fingerprint: `${x509.fingerprint256}|${ca?.toString('base64') ?? ''}`,
    notAfterSeconds: Date.parse(x509.validTo) / 1000,
  };
}

/** The operator's message for files that cannot be served (server.grpc.tls). */
export function tlsProblem(files: TlsFiles, e: unknown): string {
  return `server.grpc.tls: cannot use ${files.cert_file} / ${files.key_file}: ${(e as Error).message}`;
}
