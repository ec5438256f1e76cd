// @ts-check
// Builds build/unix.node from src/unix.c with the machine's C compiler against the headers of
// the Node that runs this script: no node-gyp, no download. Runs as the package's install
// script and before tsc in its build script.
// Usage: node scripts/build.mjs   (CC picks the compiler, default `cc`)
// When the compiler or the headers are missing or the compile fails it prints one line saying
// why, writes that line to build/unavailable.txt and still exits 0, so an install never fails
// because of it; src/index.ts then reports the reason. A good build removes unavailable.txt.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(root, 'build');
const output = join(buildDir, 'unix.node');
const unavailable = join(buildDir, 'unavailable.txt');
const source = join(root, 'src', 'unix.c');

/** The places a Node installation keeps its headers, most specific first. */
function includeCandidates() {
  const variables = /** @type {{ node_prefix?: string }} */ (process.config.variables);
  const candidates = [join(dirname(process.execPath), '..', 'include', 'node')];
  if (variables.node_prefix) candidates.push(join(variables.node_prefix, 'include', 'node'));
  candidates.push(join(homedir(), '.cache', 'node-gyp', process.versions.node, 'include', 'node'));
  return candidates;
}

/** Records why the module is not built, prints it once and ends the script successfully. */
function giveUp(/** @type {string} */ reason) {
  mkdirSync(buildDir, { recursive: true });
  rmSync(output, { force: true });
  writeFileSync(unavailable, reason + '\n');
  console.log(`@netplex/unix: native module not built: ${reason}`);
  process.exit(0);
}

const candidates = includeCandidates();
const include = candidates.find(
  (dir) => existsSync(join(dir, 'node_api.h')) && existsSync(join(dir, 'uv.h')),
);
if (!include) giveUp(`no Node headers (node_api.h, uv.h) in ${candidates.join(', ')}`);

// CC may carry flags of its own, as in `CC='gcc -m64'`.
const [cc = 'cc', ...ccFlags] = (process.env.CC || 'cc').trim().split(/\s+/);
const args = [
  ...ccFlags,
  '-shared',
  '-fPIC',
  '-O2',
  '-Wall',
  '-Wextra',
  `-I${include}`,
  '-o',
  output,
  source,
];
if (process.platform === 'darwin') args.unshift('-undefined', 'dynamic_lookup');
mkdirSync(buildDir, { recursive: true });
const result = spawnSync(cc, args, { cwd: root, encoding: 'utf8' });
if (result.error) {
  const code = /** @type {NodeJS.ErrnoException} */ (result.error).code;
  giveUp(
    code === 'ENOENT' ? `no C compiler: ${cc} not found` : `${cc} failed to start: ${result.error.message}`,
  );
}
const diagnostics = `${result.stderr}${result.stdout}`.trim();
if (result.status !== 0) {
  const first = diagnostics.split('\n').find((line) => /error/i.test(line)) ?? diagnostics.split('\n')[0];
  giveUp(`${cc} failed: ${first || `exit status ${result.status}`}`);
}
if (diagnostics) process.stderr.write(diagnostics + '\n');
rmSync(unavailable, { force: true });
