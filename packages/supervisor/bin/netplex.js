#!/usr/bin/env node
// The netplex command. The compiled CLI lives in dist/, built by `pnpm install` (the root prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(compiled))) {
  process.stderr.write('netplex: dist/cli.js is missing; run `pnpm build` at the repository root\n');
  process.exit(1);
}
const argv = process.argv.slice(2);
// `netplex run ENTRY`: start the first worker's runtime loading now, alongside this process's own
// loading (not for --help, nor when daemonizing, where this process does not stay).
if (
  argv[0] === 'run' &&
  argv[1] &&
  !argv.slice(2).some((o) => /^(-h|--help|--background|--setsid)(=|$)/.test(o))
) {
  const { forkWorker, spareChildKey, workerExecArgv } = await import('../dist/fork-worker.js');
  globalThis[spareChildKey] = forkWorker({ argv: [], execArgv: workerExecArgv(argv[1]) });
}
const { main } = await import(compiled.href);
await main(argv);
