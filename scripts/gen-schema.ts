// Writes schema/portcullis.schema.json (JSON Schema of the config, from the zod schema),
// docs/configuration.md (the option reference) and the reasons table of docs/operations.md (from
// src/core/reasons.ts). `npm run schema`; a test fails if any of them is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderConfigReference, renderJsonSchema } from '../src/policy/json-schema.ts';
import { withReasonsTable } from './reasons-table.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
writeFileSync(`${root}schema/portcullis.schema.json`, renderJsonSchema());
writeFileSync(`${root}docs/configuration.md`, renderConfigReference());
const operations = `${root}docs/operations.md`;
writeFileSync(operations, withReasonsTable(readFileSync(operations, 'utf8')));
console.log('wrote schema/portcullis.schema.json, docs/configuration.md and the reasons table of docs/operations.md');
