/**
 * options — what a Supervisor is given: the server and its sources of configuration, the entry a
 * worker runs and how it is started, and the seam to the world (env.ts). What a user configures is
 * the server's option schema instead (@netplex/core's options.ts).
 */
import type { AnyMultiplexServer } from '@netplex/core';
import type { SupervisorEnv } from './env.js';
import type { WorkerProcess } from './worker-process.js';

/** SupervisorOptions describe what to run and how. */
export interface SupervisorOptions {
  /** The server instance in this process: its class gives the option schema, its args and defaultValues() the sources. */
  server: AnyMultiplexServer;
  runArgs: Record<string, unknown>;
  /** The server's command-line options (what the worker receives as its argv). */
  argv: string[];
  /** The entry file a worker runs. */
  entry: string;
  /** Node flags for the worker (the loader, for .ts). */
  execArgv: string[];
  cwd?: string;
  /** Where the supervisor's log lines go when log_file is unset; stderr by default. */
  logDestination?: NodeJS.WritableStream;
  /** Extra environment for workers. */
  workerEnv?: NodeJS.ProcessEnv;
  /** Defaults below the server's own defaultValues() (netplex dev shortens drain_timeout). */
  defaults?: Record<string, unknown>;
  /** Takes each line a worker writes on stderr; inherited when unset. */
  workerStderrLine?: (line: string) => void;
  /** Keep a spare worker started ahead of time for fast reloads and restarts. Default: true. */
  spare?: boolean;
  /** A spare already started (by `netplex run`, while the entry loads). */
  initialSpare?: WorkerProcess;
  /** Processes, timers, the clock and file reads; the real ones by default (tests pass fakes). */
  env?: SupervisorEnv;
}
