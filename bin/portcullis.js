#!/usr/bin/env node
// The `portcullis` command: runs the compiled CLI in dist/ (`npm run build` makes it from src/;
// `npm start` builds first). Plain Node, no TypeScript loader, as in the container image.
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('portcullis: dist/ is missing (the compiled sources): run `npm run build` first\n');
  process.exit(1);
}
await import(main.href);
