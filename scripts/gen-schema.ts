// Writes schema/portcullis.schema.json (JSON Schema of the config, from the zod schema) and
// docs/configuration.md (the option reference). `npm run schema`; a test fails if either is stale.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderConfigReference, renderJsonSchema } from '../src/policy/json-schema.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
writeFileSync(`${root}schema/portcullis.schema.json`, renderJsonSchema());
writeFileSync(`${root}docs/configuration.md`, renderConfigReference());
console.log('wrote schema/portcullis.schema.json and docs/configuration.md');
