#!/usr/bin/env node
// The netplex command. The compiled CLI lives in dist/, built by `pnpm install` (the root prepare
// script): dist/bundle/ by default, tsc's modules with `node --conditions=netplex-modules`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = import.meta.resolve('@netplex/supervisor/cli');
if (!existsSync(fileURLToPath(compiled))) {
  process.stderr.write(
    `netplex: ${fileURLToPath(compiled)} is missing; run \`pnpm build\` at the repository root\n`,
  );
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
  const { forkWorker, spareChildKey, workerExecArgv } = await import('@netplex/supervisor/fork-worker');
  globalThis[spareChildKey] = forkWorker({ argv: [], execArgv: workerExecArgv(argv[1]) });
}
const { main } = await import(compiled);
await main(argv);
