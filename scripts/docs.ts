// Writes the generated reference pages: docs/reference/options.md, from the option schema in
// packages/core/src/options.ts, rendered by the code that builds `--help`.
// Usage: pnpm docs   (tsx scripts/docs.ts; it reads core's TypeScript source, so no build is needed)

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serverOptions } from '../packages/core/src/options.js';
import { formatOptionsReference, optionsReferencePath } from '../packages/core/src/options-reference.js';

const root = join(import.meta.dirname, '..');
writeFileSync(join(root, optionsReferencePath), formatOptionsReference(serverOptions));
console.log(`wrote ${optionsReferencePath}`);
