// @ts-check
/**
 * pm2 — PM2, a reload baseline, which is not a dependency of the workspace: a full run installs
 * PM2_VERSION into bench/build/pm2 (gitignored) unless it is there already, and --quick uses it only
 * if it is there. Every PM2 kind runs its own daemon under a private PM2_HOME, so a user's PM2 is
 * never touched.
 */
/** @import { Context } from './context.mjs' */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { runCaptured } from './capture.mjs';
import { BUILD, ROOT } from './paths.mjs';
import { cmdlineOf } from './proc.mjs';

export const PM2_VERSION = '7.0.4';
/** Where PM2 is installed; everything of PM2's (CLI, daemon, apps) runs in it, the mark of its pids. */
export const PM2_DIR = join(BUILD, 'pm2');
const PM2_CLI = join(PM2_DIR, 'node_modules/pm2/bin/pm2');

/**
 * ensurePm2 resolves to undefined when PM2_VERSION is ready to use, or to why the PM2 rows are missing.
 * @param {boolean} quick  a --quick run, which does not install PM2
 * @param {(msg: string) => void} log
 * @returns {string | undefined}
 */
export function ensurePm2(quick, log) {
  const installed = () => {
    try {
      const pkg = JSON.parse(readFileSync(join(PM2_DIR, 'node_modules/pm2/package.json'), 'utf8'));
      return pkg.version === PM2_VERSION;
    } catch {
      return false;
    }
  };
  if (installed()) return undefined;
  if (quick)
    return `pm2@${PM2_VERSION} is not in bench/build/pm2, and --quick does not install it (a full run does)`;
  log(`installing pm2@${PM2_VERSION} into ${relative(ROOT, PM2_DIR)} (for the bench only)`);
  mkdirSync(PM2_DIR, { recursive: true });
  const r = spawnSync(
    'npm',
    [
      'install',
      '--no-save',
      '--no-package-lock',
      '--no-audit',
      '--no-fund',
      '--fetch-retries=1',
      '--prefix',
      PM2_DIR,
      `pm2@${PM2_VERSION}`,
    ],
    { cwd: PM2_DIR, encoding: 'utf8', timeout: 300_000 },
  );
  const lines = (r.stderr ?? '').split('\n');
  const why = (
    lines.find((l) => l.includes('reason:')) ??
    lines.find((l) => l.startsWith('npm error code')) ??
    lines.find((l) => l.trim()) ??
    ''
  )
    .replace(/^npm error (network )?/, '')
    .trim();
  if (r.error) return `npm install pm2@${PM2_VERSION} failed: ${r.error.message}`;
  if (r.status !== 0)
    return `npm install pm2@${PM2_VERSION} failed (exit ${r.status})${why ? `: ${why}` : ''}`;
  return installed()
    ? undefined
    : `npm install pm2@${PM2_VERSION} ran but bench/build/pm2 has no pm2 ${PM2_VERSION}`;
}

/**
 * pm2Env is the environment of PM2's CLI and daemon: its own home, no update check, no PM2 Plus agent.
 * @param {string} home
 * @returns {NodeJS.ProcessEnv}
 */
export const pm2Env = (home) => ({
  ...process.env,
  PM2_HOME: home,
  PM2_DISABLE_VERSION_CHECK: 'true',
  PM2_NO_INTERACTION: 'true',
  PM2_DISCRETE_MODE: 'true',
  FORCE_COLOR: '0',
});

/**
 * runPm2 runs PM2's CLI on the server CPU (the daemon it may start inherits the pinning) and resolves
 * with its output once it exits 0.
 * @param {Pick<Context, 'tracker' | 'cpu'>} ctx
 * @param {string[]} args
 * @param {string} home
 * @param {number} [ms]
 * @returns {Promise<string>}
 */
export async function runPm2(ctx, args, home, ms = 60_000) {
  const [c, a] = ctx.cpu.onServer(process.execPath, [PM2_CLI, ...args]);
  const { code, signal, out, err } = await runCaptured(
    ctx.tracker,
    c,
    a,
    { cwd: ROOT, env: pm2Env(home) },
    ms,
  );
  if (code === 0) return out + err;
  const last = (out + err)
    .replace(/\x1b\[[0-9;]*m/g, '')
    .trim()
    .split('\n')
    .slice(-3)
    .join(' / ');
  throw new Error(`pm2 ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${last}`);
}

/**
 * pm2Daemon is the pid of the PM2 daemon of `home` while it runs, else undefined. Its title names its
 * home, but cut to the length of its original command line, so only PM2_DIR is certain to be in it.
 * @param {string} home
 * @returns {number | undefined}
 */
export function pm2Daemon(home) {
  let pid;
  try {
    pid = Number(readFileSync(join(home, 'pm2.pid'), 'utf8').trim());
  } catch {
    return undefined;
  }
  return pid > 0 && cmdlineOf(pid)?.includes(PM2_DIR) ? pid : undefined;
}
