import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderConfigReference, renderJsonSchema } from '../../src/policy/json-schema.ts';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/policy/load.ts';

describe('config', () => {
  it('schema/portcullis.schema.json and docs/configuration.md are generated from the current schema (run `npm run schema`)', () => {
    expect(readFileSync('schema/portcullis.schema.json', 'utf8')).toBe(renderJsonSchema());
    expect(readFileSync('docs/configuration.md', 'utf8')).toBe(renderConfigReference());
  });

  it('the example config is valid', () => {
    expect(loadConfigFile('examples/portcullis.yaml').config.routes.length).toBeGreaterThan(0);
  });

  it('header names are case-insensitive: stored lowercase', () => {
    const c = parseConfig('headers: { strip: [X-Tenant], set: { X-User-Id: subject } }');
    expect(c.headers.strip).toEqual(['x-tenant']);
    expect(c.headers.set).toEqual({ 'x-user-id': 'subject' });
  });

  it('${env:NAME} reads secrets from the environment; unset is an error with its path', () => {
    const yaml = 'credentials: { introspection: { endpoint: "https://idp/introspect", client_id: gw, client_secret: "${env:SECRET_X}", audiences: [api] } }';
    expect(parseConfig(yaml, 'f', { SECRET_X: 's3cret' }).credentials.introspection?.client_secret).toBe('s3cret');
    try {
      parseConfig(yaml, 'f', {});
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems).toEqual(['credentials.introspection.client_secret: environment variable SECRET_X is not set']);
    }
  });

  it('rejects unknown keys, duplicate YAML keys and identity headers that cannot be set', () => {
    expect(() => parseConfig('routez: []')).toThrow(/Unrecognized key/);
    expect(() => parseConfig('realm: a\nrealm: b')).toThrow(/YAML/);
    expect(() => parseConfig('headers: { set: { authorization: subject } }')).toThrow(/headers\.set\.authorization/);
  });
});
