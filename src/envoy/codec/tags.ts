// The field tags the codec reads and writes, taken from Envoy's protos (a protobufjs Root loaded
// exactly like proto-loader loads them: same include dirs, keepCase). Field numbers are read from
// here, never written by hand: a wrong number would fail silently on the wire (proto/README.md).
import { accessSync, constants } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import protobuf from 'protobufjs';
import { ENVOY_PROTO_DIRS } from '../protos.ts';

let root: protobuf.Root | undefined;

export function envoyRoot(): protobuf.Root {
  if (root) return root;
  const r = new protobuf.Root();
  const fallback = r.resolvePath.bind(r);
  r.resolvePath = (origin, target) => {
    if (isAbsolute(target)) return target;
    for (const dir of ENVOY_PROTO_DIRS) {
      const full = join(dir, target);
      try {
        accessSync(full, constants.R_OK);
        return full;
      } catch {
        // next include dir
      }
    }
    return fallback(origin, target);
  };
  r.loadSync('envoy/service/auth/v3/external_auth.proto', { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}

const WIRE_TYPE = { varint: 0, bytes: 2 } as const;

/**
 * The wire tag of `type.field` for the given wire type; throws at startup if the field is missing
 * or has another type than the codec expects.
 */
export function tagOf(typeName: string, field: string, wire: keyof typeof WIRE_TYPE): number {
  const type = envoyRoot().lookupType(typeName);
  const f = type.fields[field];
  if (!f)
    throw new Error(`proto ${typeName} has no field "${field}": the Envoy protos changed; update src/envoy/codec/`);
  const isVarint =
    !f.map &&
    !f.repeated &&
    (f.resolvedType instanceof protobuf.Enum ||
      ['int32', 'uint32', 'bool', 'int64', 'uint64', 'sint32', 'sint64'].includes(f.type));
  const isBytes =
    f.map || f.repeated || f.resolvedType instanceof protobuf.Type || ['string', 'bytes'].includes(f.type);
  if ((wire === 'varint' && !isVarint) || (wire === 'bytes' && !isBytes)) {
    throw new Error(`proto ${typeName}.${field} is ${f.type}, not a ${wire} field: update src/envoy/codec/`);
  }
  return (f.id << 3) | WIRE_TYPE[wire];
}
