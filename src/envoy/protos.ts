// Envoy's real API protos, as shipped (version-pinned) by @grpc/grpc-js-xds under deps/.
// See proto/README.md for the version and why these are enough for a Check server.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import * as grpc from '@grpc/grpc-js';

const require = createRequire(import.meta.url);
const XDS_ROOT = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));

export const ENVOY_PROTO_DIRS = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) =>
  join(XDS_ROOT, 'deps', d),
);

export const AUTHZ_SERVICE = 'envoy.service.auth.v3.Authorization';
export const CHECK_METHOD_PATH = `/${AUTHZ_SERVICE}/Check`;

/** Options used everywhere: keep proto field names, enums as names, longs as strings, oneof keys. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: ENVOY_PROTO_DIRS,
};

let cached: protoLoader.PackageDefinition | undefined;

export function loadAuthzPackageDefinition(): protoLoader.PackageDefinition {
  cached ??= protoLoader.loadSync('envoy/service/auth/v3/external_auth.proto', LOADER_OPTIONS);
  return cached;
}

export function authorizationService(): grpc.ServiceDefinition {
  return loadAuthzPackageDefinition()[AUTHZ_SERVICE] as grpc.ServiceDefinition;
}

/** A client constructor, for tests and tools: `new (authorizationClient())(addr, creds)`. */
export function authorizationClient(): grpc.ServiceClientConstructor {
  return grpc.makeGenericClientConstructor(authorizationService(), 'Authorization');
}
