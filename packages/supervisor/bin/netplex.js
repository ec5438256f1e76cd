#!/usr/bin/env node
// The netplex command. The compiled CLI lives in dist/, built by `pnpm install` (the root prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(compiled))) {
  process.stderr.write('netplex: dist/cli.js is missing; run `pnpm build` at the repository root\n');
  process.exit(1);
}
const { main } = await import(compiled.href);
await main(process.argv.slice(2));
