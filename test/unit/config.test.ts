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
    const yaml =
      'credentials: { introspection: { endpoint: "https://idp/introspect", client_id: gw, client_secret: "${env:SECRET_X}", audiences: [api] } }';
    expect(parseConfig(yaml, 'f', { SECRET_X: 's3cret' }).credentials.introspection?.client_secret).toBe('s3cret');
    try {
      parseConfig(yaml, 'f', {});
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems).toEqual([
        'credentials.introspection.client_secret: environment variable SECRET_X is not set',
      ]);
    }
  });

  it('any ${ that is not a valid ${env:NAME} is an error with its path, never literal text; $${ is a literal ${', () => {
    const problems = (value: string, env: NodeJS.ProcessEnv = {}) => {
      try {
        parseConfig(`realm: "${value}"`, 'f', env);
        return [];
      } catch (e) {
        return (e as ConfigError).problems;
      }
    };
    for (const bad of [
      '${env:lower-case}',
      '${ENV:X}',
      '${Env:X}',
      '${env:1X}',
      '${env:}',
      '${X}',
      '${}',
      'a${env:X',
      'x ${ y',
    ]) {
      expect({ bad, problems: problems(bad, { X: 'x' }) }).toEqual({
        bad,
        problems: [expect.stringMatching(/^realm: .*(is not a reference|has no closing)/)],
      });
    }
    // Every bad reference in a file is listed, each with its path.
    expect(problems('${ENV:A}${env:b-c}')).toHaveLength(2);
    expect(parseConfig('realm: "$${env:X} costs $5 and $$"', 'f', { X: 'x' }).realm).toBe('${env:X} costs $5 and $$');
    expect(parseConfig('realm: "a-${env:lower_ok}-b"', 'f', { lower_ok: 'v' }).realm).toBe('a-v-b');
  });

  it('a variable that is set but empty is an error (an empty secret is never intended)', () => {
    const yaml =
      'credentials: { introspection: { endpoint: "https://idp/introspect", client_id: gw, client_secret: "${env:SECRET_X}" } }';
    expect(() => parseConfig(yaml, 'f', { SECRET_X: '' })).toThrow(
      /credentials\.introspection\.client_secret: environment variable SECRET_X is empty/,
    );
  });

  it('rejects unknown keys, duplicate YAML keys and identity headers that cannot be set', () => {
    expect(() => parseConfig('routez: []')).toThrow(/Unrecognized key/);
    expect(() => parseConfig('realm: a\nrealm: b')).toThrow(/YAML/);
    expect(() => parseConfig('headers: { set: { authorization: subject } }')).toThrow(/headers\.set\.authorization/);
  });
});
