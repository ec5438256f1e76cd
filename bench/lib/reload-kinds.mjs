// @ts-check
/**
 * reload-kinds — the ways of reloading a server that the reload scenario compares: netplex (SIGHUP,
 * `netplex dev` and a file save), node --watch, tsx watch, Perl's SIGHUP and PM2's `pm2 reload`.
 * Each server greets every connection with "PID %011d\n" so the load client can tell who served it.
 */
/** @import { Context } from './context.mjs' */
/** @import { Command } from './cpu.mjs' */
/** @import { ServerChild } from './servers.mjs' */
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sleep } from './clock.mjs';
import { messageOf } from './errors.mjs';
import { startNetplex } from './netplex.mjs';
import { BUILD, ROOT, SERVERS } from './paths.mjs';
import { PM2_DIR, pm2Daemon, runPm2 } from './pm2.mjs';
import { freePort } from './ports.mjs';
import { descendantsOf } from './proc.mjs';
import { pidOf, portLine, spawnServer, startPerl, waitLine } from './servers.mjs';
import { stopChild } from './tracker.mjs';

/**
 * A server started for the reload scenario. `reload()` reloads it: a signal to a pid, a save of a
 * watched file, or a command (it then returns the command's promise). `mark` is what the cmdline of
 * every pid its greetings name must contain for the tracker to kill it: 'pid-echo' when undefined,
 * nothing when null (a Perl instance id is not a pid).
 * @typedef {object} ReloadServer
 * @property {number} port
 * @property {number} pid
 * @property {ServerChild} [child]
 * @property {() => unknown} reload
 * @property {() => Promise<void>} stop
 * @property {string | null} [mark]
 */

/**
 * A reload kind: its id and label in the table, and how to start its server.
 * @typedef {object} ReloadKind
 * @property {string} id
 * @property {string} label
 * @property {() => Promise<ReloadServer>} start
 */

/**
 * reloadKinds lists the kinds to run: a --quick run has the netplex SIGHUP kinds (and PM2's when
 * `pm2`), a full run all of them.
 * @param {Context} ctx
 * @param {{ pm2?: boolean }} [options]
 * @returns {ReloadKind[]}
 */
export function reloadKinds(ctx, { pm2 = false } = {}) {
  const { tracker } = ctx;
  /** @type {ReloadKind[]} */
  const kinds = [];
  const watchDir = join(BUILD, 'watch');
  /**
   * A private copy of a server in its own package, so a watcher sees only it (and saving it is harmless).
   * @param {string} sub
   * @param {string} from
   * @param {string} name
   */
  const copyServer = (sub, from, name) => {
    const dir = join(watchDir, sub);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{ "private": true, "type": "module" }\n');
    const to = join(dir, name);
    const core = pathToFileURL(join(ROOT, 'packages/core/dist/bundle/index.js')).href;
    writeFileSync(to, readFileSync(from, 'utf8').replace('../../packages/core/dist/bundle/index.js', core));
    return to;
  };
  /** @param {string} file */
  const save = (file) => () => appendFileSync(file, `// saved at ${Date.now()}\n`);
  /** @param {number} pid */
  const hup = (pid) => () => process.kill(pid, 'SIGHUP');

  /**
   * The raw echo server under PM2, set up for reloads the way PM2's users do it: `pm2 start` (with
   * `modeArgs`), then `pm2 reload NAME` from PM2's CLI, issued when the latency clock starts and not
   * awaited. Everything of PM2's (CLI, daemon, apps) runs in PM2_DIR, which is the mark of its pids.
   * @param {string} id
   * @param {string} label
   * @param {string[]} modeArgs
   * @returns {ReloadKind}
   */
  const pm2Kind = (id, label, modeArgs) => ({
    id,
    label,
    start: async () => {
      const dir = join(PM2_DIR, 'apps', id);
      mkdirSync(dir, { recursive: true });
      const file = join(dir, 'raw-echo.mjs');
      writeFileSync(file, readFileSync(join(SERVERS, 'raw-echo.mjs')));
      const home = join(PM2_DIR, `home-${process.pid}-${id}`);
      rmSync(home, { recursive: true, force: true });
      const port = await freePort();
      const stop = async () => {
        const daemon = pm2Daemon(home);
        if (daemon !== undefined) {
          tracker.mark(daemon, PM2_DIR);
          for (const pid of descendantsOf([daemon])) tracker.mark(pid, PM2_DIR);
          await runPm2(ctx, ['kill'], home, 30_000).catch((err) => ctx.log(`${id}: ${messageOf(err)}`));
        }
        tracker.killStray('SIGKILL', PM2_DIR);
        rmSync(home, { recursive: true, force: true });
      };
      try {
        await runPm2(ctx, ['start', file, '--name', id, ...modeArgs, '--', String(port), '--header'], home);
      } catch (err) {
        await stop();
        throw err;
      }
      const daemon = pm2Daemon(home);
      if (daemon === undefined) {
        await stop();
        throw new Error(`pm2 start gave no daemon in ${relative(ROOT, home)}`);
      }
      tracker.mark(daemon, PM2_DIR);
      for (const pid of descendantsOf([daemon])) tracker.mark(pid, PM2_DIR);
      return { port, pid: daemon, reload: () => runPm2(ctx, ['reload', id], home), stop, mark: PM2_DIR };
    },
  });
  const pm2Kinds = pm2
    ? [
        // 2 instances is what `-i max` gives on this 2-core machine, fixed so that the row means the
        // same elsewhere; PM2 reloads cluster instances one at a time, each replaced once its successor listens.
        pm2Kind('pm2_cluster', 'pm2 reload, cluster mode, 2 instances', ['-i', '2']),
        // In fork mode `pm2 reload` restarts the one process: stop, then start.
        pm2Kind('pm2_fork', 'pm2 reload, fork mode, 1 instance', []),
      ]
    : [];

  kinds.push({
    id: 'netplex_hup_js',
    label: 'netplex run .js, SIGHUP',
    start: async () => {
      const s = await startNetplex(ctx, join(SERVERS, 'pid-echo.mjs'));
      return { ...s, reload: hup(s.supervisorPid) };
    },
  });
  kinds.push({
    id: 'netplex_hup_ts',
    label: 'netplex run .ts (tsx), SIGHUP',
    start: async () => {
      const s = await startNetplex(ctx, join(SERVERS, 'pid-echo.ts'));
      return { ...s, reload: hup(s.supervisorPid) };
    },
  });
  if (ctx.quick) return [...kinds, ...pm2Kinds];
  kinds.push({
    id: 'netplex_dev_save',
    label: 'netplex dev .js, file save',
    start: async () => {
      const file = copyServer('netplex-dev', join(SERVERS, 'pid-echo.mjs'), 'pid-echo.mjs');
      const s = await startNetplex(ctx, file, { dev: true });
      await sleep(500); // the watcher starts after the first worker serves
      return { ...s, reload: save(file) };
    },
  });
  /**
   * The raw echo server under a watcher that restarts it when its file is saved.
   * @param {string} id
   * @param {string} label
   * @param {(file: string, port: number) => Command} cmd
   * @returns {ReloadKind}
   */
  const rawWatch = (id, label, cmd) => ({
    id,
    label,
    start: async () => {
      const file = copyServer(id, join(SERVERS, 'raw-echo.mjs'), 'raw-echo.mjs');
      const port = await freePort();
      const [c, a] = cmd(file, port);
      const child = spawnServer(ctx, c, a);
      await waitLine(child, portLine, label);
      await sleep(300);
      return {
        port,
        pid: pidOf(child),
        child,
        reload: save(file),
        stop: async () => {
          await stopChild(child);
          tracker.killStray('SIGKILL', file);
        },
        mark: file,
      };
    },
  });
  kinds.push(
    rawWatch('node_watch', 'node --watch, file save', (f, p) => [
      process.execPath,
      ['--watch', f, String(p), '--header'],
    ]),
  );
  kinds.push(
    rawWatch('tsx_watch', 'tsx watch, file save', (f, p) => [
      process.execPath,
      [
        join(ROOT, 'node_modules/tsx/dist/cli.mjs'),
        'watch',
        '--clear-screen=false',
        f,
        String(p),
        '--header',
      ],
    ]),
  );
  if (ctx.tools.perl) {
    kinds.push({
      id: 'perl_hup',
      label: 'Perl Net::Server::Multiplex, SIGHUP',
      start: async () => {
        const s = await startPerl(ctx, 'header');
        // Perl's HUP re-execs in the same pid, so its greeting carries an instance id, not a pid.
        return { ...s, reload: hup(s.pid), mark: null };
      },
    });
  }
  return [...kinds, ...pm2Kinds];
}
