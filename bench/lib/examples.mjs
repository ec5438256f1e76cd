// @ts-check
/** examples — the example servers the scenarios run, built when they are missing or stale. */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EXAMPLES, ROOT } from './paths.mjs';

/**
 * ensureExamples builds packages/examples when its dist is missing or older than its sources.
 * @param {(msg: string) => void} log
 */
export function ensureExamples(log) {
  const stale = ['echo', 'lines', 'httpd', 'samplechat'].some((n) => {
    const js = join(EXAMPLES, 'dist', `${n}.js`);
    return !existsSync(js) || statSync(js).mtimeMs < statSync(join(EXAMPLES, 'src', `${n}.ts`)).mtimeMs;
  });
  if (!stale && existsSync(join(ROOT, 'packages/core/dist/bundle/index.js'))) return;
  log('building the examples (pnpm --filter @netplex/examples build)');
  const r = spawnSync('pnpm', ['--filter', '@netplex/examples', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('pnpm --filter @netplex/examples build failed; run pnpm build');
}
