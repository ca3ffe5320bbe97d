// What a config names outside itself, checked before anything starts: every local file it points to
// must be there and readable. A missing API-key file used to start a server that denied every key
// with 401 while /readyz said ready. `serve` refuses a config that fails here (exit 2), a reload
// rejects it (the running config keeps serving), and `portcullis config check` reports the same
// problems, so that "valid" means "serve will start".
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError, type LoadedConfig } from '../policy/load.ts';
import { absoluteTlsFiles, readTlsFiles, tlsProblem } from '../plumbing/tls-files.ts';
import { FileKeyStore } from '../stores/file-keystore.ts';
import { resolvePath } from './components.ts';

export interface PreflightOptions {
  /** Also the listeners' files (server.grpc.tls), which `serve` reads once at start. */
  listeners?: boolean;
}

/** Every problem, each as "config.path: what is wrong; what to do". */
export async function preflightProblems(loaded: LoadedConfig, opts: PreflightOptions = {}): Promise<string[]> {
  const { config, dir } = loaded;
  const at = (p: string) => resolvePath(dir, p);
  const problems: string[] = [];

  const store = config.credentials.api_key?.store;
  if (store?.type === 'file') {
    const path = at(store.path);
    if (existsSync(path)) {
      keyFileProblem('credentials.api_key.store.path', path, problems);
    } else if (store.create_from !== undefined) {
      keyFileProblem('credentials.api_key.store.create_from', at(store.create_from), problems);
    } else {
      problems.push(
        `credentials.api_key.store.path: ${path} does not exist. Create an empty key store with ` +
          `\`portcullis keys init -c ${loaded.file}\`, or correct the path`,
      );
    }
  }

  for (const [i, issuer] of (config.credentials.jwt ?? []).entries()) {
    if (issuer.jwks_file === undefined) continue;
    const file = at(issuer.jwks_file);
    const where = `credentials.jwt[${i}].jwks_file`;
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      problems.push(code ? `${where}: cannot read ${file}: ${code}` : `${where}: ${file} is not JSON`);
      continue;
    }
    if (!doc || typeof doc !== 'object' || !Array.isArray((doc as { keys?: unknown }).keys)) {
      problems.push(`${where}: ${file} is not a JWK Set (an object with a "keys" list)`);
    }
  }

  const introspection = config.credentials.introspection;
  if (introspection?.ca_file !== undefined)
    readable('credentials.introspection.ca_file', at(introspection.ca_file), problems);
  const phantom = introspection?.phantom_token;
  if (phantom?.enabled && phantom.keys?.length) {
    const { loadKeyFiles } = await import('../credentials/phantom/keys.ts');
    await loadKeyFiles(phantom.keys, phantom.algorithm, at, 'credentials.introspection.phantom_token').catch(
      (e: Error) => problems.push(e.message),
    );
  }

  const tls = config.server.grpc.tls;
  if (opts.listeners && tls) {
    // The same reading serve does (certificate and key must be PEM and belong together).
    const files = absoluteTlsFiles(tls, dir);
    try {
      readTlsFiles(files);
    } catch (e) {
      problems.push(tlsProblem(files, e));
    }
  }
  return problems;
}

/** Throws a ConfigError listing every problem preflightProblems finds. */
export async function preflight(loaded: LoadedConfig, opts: PreflightOptions = {}): Promise<void> {
  const problems = await preflightProblems(loaded, opts);
  if (problems.length) throw new ConfigError(loaded.file, problems);
}

function keyFileProblem(where: string, path: string, problems: string[]): void {
  try {
    FileKeyStore.read(path);
  } catch (e) {
    problems.push(`${where}: ${(e as Error).message}`);
  }
}

function readable(where: string, path: string, problems: string[]): void {
  try {
    readFileSync(path);
  } catch (e) {
    problems.push(`${where}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
