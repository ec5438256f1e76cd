// @ts-check
/** paths — where the bench finds the repository, its own files and what it builds. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
export const BENCH = join(ROOT, 'bench');
/** Everything the bench builds or installs (gitignored). */
export const BUILD = join(BENCH, 'build');
/** The C load client and echo server, built from bench/loadgen.c. */
export const LOADGEN = join(BUILD, 'loadgen');
/** The supervisor's CLI. */
export const NETPLEX = join(ROOT, 'packages/supervisor/bin/netplex.js');
export const EXAMPLES = join(ROOT, 'packages/examples');
/** The baseline servers (raw node:net, node:http, Perl) and the reload test's servers. */
export const SERVERS = join(BENCH, 'servers');
