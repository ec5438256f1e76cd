/**
 * server/types — the types of a server's life that the parts of netplex share: its state, what
 * start() takes, and the constructor's arguments.
 */
import type { BindTarget } from '../port-spec.js';

/** ServerState is where a server is in its life. */
export type ServerState = 'new' | 'starting' | 'running' | 'migrating' | 'closing' | 'closed';

/** ConstructorArgs are the highest-precedence configuration source, as arguments to Perl's new(). */
export type ConstructorArgs = Record<string, unknown>;

/** StartOptions are what `start()` takes besides the constructor's arguments. */
export interface StartOptions {
  /** Command-line arguments; `run()` passes `process.argv.slice(2)`. Default: none. */
  argv?: string[];
  /** Arguments to `run()`, below the command line in precedence. */
  run?: Record<string, unknown>;
  /** Working directory a relative conf_file is read from. Default: process.cwd(). */
  cwd?: string;
  /** The conf_file's text, parsed instead of reading the file (the supervisor's validated copy). */
  confText?: string | undefined;
  /** Where log lines go when log_file is unset. Default: stderr. */
  logDestination?: NodeJS.WritableStream;
  /** Listen handles bound elsewhere (by the supervisor), by bind-target key. */
  handles?: ReadonlyMap<string, unknown>;
  /** The bind targets the handles belong to; required with `handles`. */
  targets?: readonly BindTarget[];
  /** True when this start replaces a previous server (runs restartOpenHook). */
  restarting?: boolean;
  /**
   * True when connections will migrate in from the server this one replaces: new connections wait,
   * unnumbered, until `thawServer()` brings that server's connection counter.
   */
  migrating?: boolean;
  /**
   * True when the passed handles already listen and another process accepts on them or will (a
   * reload's old worker, or the kernel's backlog after a crash): accept only once the loop starts,
   * so that a start that fails takes no connection with it.
   */
  deferAccept?: boolean;
}
