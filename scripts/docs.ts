// Writes the generated reference pages: docs/reference/options.md, from the option schema in
// packages/core/src/options.ts, rendered by the code that builds `--help`; and the table of
// Net::Server's options in docs/guides/from-perl.md, from packages/core/src/net-server-options.ts.
// Usage: pnpm docs   (tsx scripts/docs.ts; it reads core's TypeScript source, so no build is needed)

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serverOptions } from '../packages/core/src/options.js';
import {
  formatOptionsReference,
  netServerOptionsPath,
  optionsReferencePath,
  withNetServerOptions,
} from '../packages/core/src/options-reference.js';

const root = join(import.meta.dirname, '..');
writeFileSync(join(root, optionsReferencePath), formatOptionsReference(serverOptions));
console.log(`wrote ${optionsReferencePath}`);
const perlPage = join(root, netServerOptionsPath);
writeFileSync(perlPage, withNetServerOptions(readFileSync(perlPage, 'utf8')));
console.log(`wrote the table of Net::Server options in ${netServerOptionsPath}`);
