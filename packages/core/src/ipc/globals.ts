/**
 * ipc/globals — every process-wide name netplex uses: the global symbols by which its modules find
 * each other within one process, and the environment variables by which one process tells the next
 * what it is. Each is declared once, here, with who writes it and who reads it; no other file
 * spells one of these literals. This module imports nothing, so that the supervisor's fork-worker.ts
 * (which bin/netplex.js loads first thing) can import it as `@netplex/core/globals` at no cost.
 *
 * Symbols are registered with Symbol.for, so that two copies of netplex in one process (an entry
 * that resolves its own @netplex/core next to the supervisor's) still meet.
 */

/**
 * entryKey: the URL of the entry this process runs, so that that entry's isMain() is true.
 * Written by `netplex run` / `netplex dev` (supervisor cli.ts) and by a worker before it imports the
 * entry (supervisor worker-main.ts); read by core's isMain() (main.ts).
 */
export const entryKey = Symbol.for('netplex.entry');

/**
 * superviseKey: the supervisor's entry point, a function of the server and run()'s arguments.
 * Written by @netplex/supervisor when it loads (index.ts) and by `netplex run` / `netplex dev`
 * (cli.ts, which registers the dev variant); read by core's launch (server/launch.ts).
 */
export const superviseKey = Symbol.for('netplex.supervise');

/**
 * commandKey: the `netplex` command's own command line (script and arguments), which a daemonizing
 * supervisor runs again detached. Written by cli.ts; read by supervise.ts.
 */
export const commandKey = Symbol.for('netplex.command');

/**
 * spareKey: a spare worker started ahead of the entry's loading (prewarm). Written by prewarm()
 * in supervise.ts; read (and cleared) by supervise(), which takes it as its first worker.
 */
export const spareKey = Symbol.for('netplex.spare');

/**
 * spareChildKey: the process of a spare worker that bin/netplex.js forked first thing, before the
 * CLI loaded. Written by bin/netplex.js; read (and cleared) by prewarm() in supervise.ts.
 */
export const spareChildKey = Symbol.for('netplex.spare-child');

/**
 * workerEnv (`NETPLEX_WORKER=1`): this process is a worker under a supervisor, and its server's run()
 * serves the handles passed over IPC. Written by the supervisor's forkWorker (fork-worker.ts); read
 * by core's launch (server/launch.ts) and start flow (a failed start is the supervisor's to report).
 */
export const workerEnv = 'NETPLEX_WORKER';

/**
 * inProcessEnv (`NETPLEX_INPROCESS=1`): run() serves in this process, without a supervisor, even when
 * @netplex/supervisor is installed. Written by the user (and by tests); read by server/launch.ts.
 */
export const inProcessEnv = 'NETPLEX_INPROCESS';

/**
 * daemonEnv (`NETPLEX_DAEMON_CHILD=1`): this process is the detached copy of a supervisor started
 * with background or setsid, and reports to the command that started it (see DaemonMessage).
 * Written and read by the supervisor's supervise.ts.
 */
export const daemonEnv = 'NETPLEX_DAEMON_CHILD';

/**
 * ipvEnv (`IPV`): the default IP version of a port spec, as Net::Server reads `$ENV{IPV}`. Written by
 * the user; read by core's port-spec.ts when the configuration does not say.
 */
export const ipvEnv = 'IPV';

/**
 * linkFdEnv (`NETPLEX_LINK_FD`): the descriptor of this worker's end of a unix socket pair with the
 * supervisor, over which it is handed its end of each direct migration link. Written by the
 * supervisor's forkWorker (fork-worker.ts) when the native module is there; read by ipc/worker.ts.
 */
export const linkFdEnv = 'NETPLEX_LINK_FD';
