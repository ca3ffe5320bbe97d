// `portcullis keys init|create|list|revoke|rotate` against the store the config names.
import { existsSync } from 'node:fs';
import { Command, Option } from 'commander';
import { pino } from 'pino';
import { createKey, parseDuration, parseMetadata, revokeKey, rotateKey } from '../credentials/api-key/admin.ts';
import { ConfigError, loadConfigFile } from '../policy/load.ts';
import type { Config } from '../policy/schema.ts';
import { createKeyStore, resolvePath } from '../runtime/components.ts';
import { FileKeyStore, KeyFileError } from '../stores/file-keystore.ts';
import { Metrics } from '../runtime/metrics.ts';
import { isActive, type KeyRecord, type KeyStore } from '../stores/keystore.ts';
import { mustGive, UsageError } from './usage.ts';

async function openStore(configFile: string): Promise<{ store: KeyStore; prefix: string; config: Config }> {
  const loaded = loadConfigFile(configFile);
  const apiKey = loaded.config.credentials.api_key;
  if (!apiKey)
    throw new ConfigError(loaded.file, ['credentials.api_key: not configured, so there is no key store to manage']);
  const cfg = apiKey.store;
  // The same rule as serve: a file store that does not exist is a mistake, not an empty store.
  if (cfg.type === 'file' && cfg.create_from === undefined && !existsSync(resolvePath(loaded.dir, cfg.path))) {
    throw new ConfigError(loaded.file, [
      `credentials.api_key.store.path: ${resolvePath(loaded.dir, cfg.path)} does not exist. Create an empty key store with \`portcullis keys init -c ${loaded.file}\`, or correct the path`,
    ]);
  }
  const store = createKeyStore({
    config: loaded.config,
    dir: loaded.dir,
    log: pino({ level: 'warn' }, pino.destination(2)),
    metrics: new Metrics({ defaultMetrics: false }),
  })!;
  return { store, prefix: apiKey.prefix, config: loaded.config };
}

const list = (s?: string) =>
  s
    ? s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)
    : undefined;

function publicView(r: KeyRecord, nowMs = Date.now()) {
  // Never the hash either: it is not secret, but nobody needs it.
  const { hash: _hash, ...rest } = r;
  return { ...rest, state: r.status === 'revoked' ? 'revoked' : isActive(r, nowMs) ? 'active' : 'expired' };
}

function formatMetadata(m: Readonly<Record<string, string>> | undefined): string {
  if (!m || !Object.keys(m).length) return '-';
  // JSON text for the values: they may hold commas, = or spaces.
  return Object.entries(m)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(',');
}

async function withStore(
  configFile: string,
  fn: (s: { store: KeyStore; prefix: string; config: Config }) => Promise<void>,
): Promise<void> {
  const s = await openStore(configFile);
  try {
    await fn(s);
  } finally {
    await s.store.close();
  }
}

/** The options commander parses for each subcommand (the flags below, camel-cased). */
interface StoreOptions {
  config: string;
  json?: boolean;
}
interface CreateOptions extends StoreOptions {
  clientId: string;
  scopes?: string;
  routes?: string;
  cidrs?: string;
  expiresIn?: string;
  subject?: string;
  metadata?: string[];
}
interface RotateOptions extends StoreOptions {
  grace?: string;
}

export function keysCommand(configOption: () => Option): Command {
  const keys = new Command('keys').description('manage API keys (the store keeps only SHA-256 hashes)');

  keys
    .command('init')
    .description('create an empty key store (file stores; a Redis store needs no creating)')
    .addOption(configOption())
    .action(async (o: { config: string }) => {
      const loaded = loadConfigFile(o.config);
      const cfg = loaded.config.credentials.api_key?.store;
      if (!cfg)
        throw new ConfigError(loaded.file, ['credentials.api_key: not configured, so there is no key store to create']);
      if (cfg.type !== 'file') {
        console.log(
          `credentials.api_key.store.type is ${cfg.type}: there is no file to create; keys create adds the first key`,
        );
        return;
      }
      const path = resolvePath(loaded.dir, cfg.path);
      try {
        FileKeyStore.init(path);
      } catch (e) {
        throw new UsageError((e as KeyFileError).message);
      }
      console.log(
        `Created an empty key store at ${path}. Add keys with: portcullis keys create -c ${o.config} --client-id <id>`,
      );
    });

  keys
    .command('create')
    .description('create a key; it is printed once and never stored')
    .addOption(configOption())
    .addOption(mustGive(new Option('--client-id <id>', 'client the key belongs to')))
    .option('--scopes <list>', 'comma-separated scopes')
    .option('--routes <list>', 'comma-separated route names the key may be used on (default: any)')
    .option('--cidrs <list>', 'comma-separated source CIDRs (default: anywhere)')
    .option('--expires-in <duration>', 'e.g. 30d, 12h')
    .option('--subject <id>', "who the key acts for (x-user-id); default: none, the key is the client's")
    .option(
      '--metadata <name=value>',
      'an attribute policy reads as identity.claims.<name> (repeatable)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--json', 'print JSON')
    .action(async (o: CreateOptions) =>
      withStore(o.config, async ({ store, prefix, config }) => {
        const { key, record } = await createKey(store, prefix, {
          clientId: o.clientId,
          scopes: list(o.scopes),
          routes: list(o.routes),
          cidrs: list(o.cidrs),
          expiresInSeconds: o.expiresIn ? parseDuration(o.expiresIn) : undefined,
          subject: o.subject,
          metadata: o.metadata ? parseMetadata(o.metadata) : undefined,
          configRoutes: config.routes,
        });
        if (o.json) console.log(JSON.stringify({ ...publicView(record), key }, null, 2));
        else {
          console.log(
            `Created ${record.id} for client ${record.client_id}${record.subject !== undefined ? ` (subject ${record.subject})` : ''}.`,
          );
          console.log(`Key (shown once, store it now): ${key}`);
        }
      }),
    );

  keys
    .command('list')
    .description('list keys (never the keys themselves)')
    .addOption(configOption())
    .option('--json', 'print JSON')
    .action(async (o: StoreOptions) =>
      withStore(o.config, async ({ store }) => {
        const records = (await store.list()).map((r) => publicView(r));
        // Records that failed the key-record schema: locked out, listed so they can be fixed.
        const invalid = (await store.listInvalid()).map((l) => ({
          id: l.id ?? null,
          position: l.position,
          state: 'invalid' as const,
          problems: l.problems,
        }));
        if (o.json) console.log(JSON.stringify([...records, ...invalid], null, 2));
        else if (!records.length && !invalid.length) console.log('no keys');
        else {
          for (const r of records)
            console.log(
              `${r.id}  ${r.client_id}  ${r.state}  scopes=${r.scopes.join(',') || '-'}  routes=${r.routes?.join(',') || 'any'}  ` +
                `cidrs=${r.cidrs?.join(',') || 'any'}  expires=${r.expires_at ?? 'never'}  subject=${r.subject ?? '-'}  ` +
                `metadata=${formatMetadata(r.metadata)}`,
            );
          for (const l of invalid) console.log(`${l.id ?? l.position}  invalid (locked out): ${l.problems.join('; ')}`);
        }
      }),
    );

  keys
    .command('revoke')
    .description('revoke a key; running servers deny it within seconds')
    .addOption(configOption())
    .argument('<id>', 'key id (from keys list)')
    .option('--json', 'print JSON')
    .action(async (id: string, o: StoreOptions) =>
      withStore(o.config, async ({ store }) => {
        const r = await revokeKey(store, id);
        console.log(o.json ? JSON.stringify(publicView(r), null, 2) : `Revoked ${r.id} (client ${r.client_id}).`);
      }),
    );

  keys
    .command('rotate')
    .description(
      'create a new key for the same client and grants; the old key stays valid until revoked or --grace ends',
    )
    .addOption(configOption())
    .argument('<id>', 'key id to rotate')
    .option('--grace <duration>', 'old key expires after this, e.g. 24h')
    .option('--json', 'print JSON')
    .action(async (id: string, o: RotateOptions) =>
      withStore(o.config, async ({ store, prefix }) => {
        const { key, record, old } = await rotateKey(store, prefix, id, o.grace ? parseDuration(o.grace) : undefined);
        if (o.json) console.log(JSON.stringify({ ...publicView(record), key, old: publicView(old) }, null, 2));
        else {
          console.log(
            `Created ${record.id} for client ${record.client_id}, replacing ${old.id}${old.expires_at ? ` (valid until ${old.expires_at})` : ' (valid until revoked)'}.`,
          );
          console.log(`Key (shown once, store it now): ${key}`);
        }
      }),
    );
  return keys;
}
