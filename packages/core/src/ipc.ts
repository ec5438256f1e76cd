/**
 * ipc — every message between the supervisor and its worker, as one discriminated union.
 *
 * Both sides import this file. Types carry the `netplex:` prefix, reserved for this traffic, so that
 * a user's own `process.send()` messages are never taken for ours (and ours are dropped by
 * `isNetplexMessage` checks on their side).
 */
import type { BindTarget } from './port-spec.js';

/** ListenAddress is a bound address as reported to the supervisor. */
export type ListenAddress =
  | { proto: 'tcp' | 'udp'; address: string; port: number; family: 4 | 6 }
  | { proto: 'unix'; path: string };

/** SupervisorMessage is what the supervisor sends a worker. */
export type SupervisorMessage =
  /** Start serving these targets; the handles follow, one `netplex:handle` message each. */
  | {
      type: 'netplex:start';
      targets: BindTarget[];
      /** Keys of the targets whose handles will follow; the worker binds the others itself (udp). */
      handleKeys: string[];
      restarting: boolean;
      /** How long the worker has to get ready; it reports start-up hooks that hang. */
      readyTimeoutMs: number;
    }
  /** A listen handle for `key`, sent with the message. The worker answers `netplex:ack`. */
  | { type: 'netplex:handle'; seq: number; key: string }
  /** Stop accepting, run restartCloseHook, serve live connections up to drainTimeoutMs, then exit. */
  | { type: 'netplex:retire'; drainTimeoutMs: number }
  /** Stop now: close hooks run, connections are closed, then exit. */
  | { type: 'netplex:stop' }
  /** Stop accepting, drain up to drainTimeoutMs, then exit (SIGQUIT). */
  | { type: 'netplex:quit'; drainTimeoutMs: number }
  /** Ask for live figures; answered by `netplex:status` with `ack` = seq. */
  | { type: 'netplex:status'; seq: number }
  /** Reopen log files (logrotate, SIGUSR1). */
  | { type: 'netplex:reopen-logs' };

/** WorkerStatus is what a worker reports about itself. */
export interface WorkerStatus {
  connections: number;
  requests: number;
}

/** WorkerMessage is what a worker sends the supervisor. */
export type WorkerMessage =
  /** The entry loaded and reached run(); waiting for `netplex:start`. */
  | { type: 'netplex:hello' }
  | { type: 'netplex:ack'; ack: number }
  /** Every listener accepts. */
  | { type: 'netplex:ready'; addresses: ListenAddress[] }
  | ({ type: 'netplex:status'; ack: number } & WorkerStatus)
  /** The server called endloop(): the whole server stops, as in Perl. */
  | { type: 'netplex:endloop' }
  /** Start-up failed; the worker exits after sending this. */
  | { type: 'netplex:fatal'; message: string; code?: string };

/** NetplexMessage is any message of the protocol. */
export type NetplexMessage = SupervisorMessage | WorkerMessage;

/** isNetplexMessage tells our traffic from a user's own IPC messages. */
export function isNetplexMessage(value: unknown): value is NetplexMessage {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { type?: unknown }).type === 'string' &&
    (value as { type: string }).type.startsWith('netplex:')
  );
}

/** workerEnv names the environment variable that marks a process as a netplex worker. */
export const workerEnv = 'NETPLEX_WORKER';
