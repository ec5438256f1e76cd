/**
 * phase — what the supervisor is doing, as one value, and what each request does in each phase, as
 * one table. The supervisor changes its phase in one place (logged at debug); its public `state`
 * is a view of the phase with four values.
 *
 * ```mermaid
 * stateDiagram-v2
 *   [*] --> starting
 *   starting --> serving: the first worker is ready
 *   starting --> stopped: the start failed
 *   serving --> reloading: reload
 *   reloading --> serving: done (or failed)
 *   reloading --> backoff: failed, a crash restart pending
 *   serving --> backoff: the worker died
 *   backoff --> restarting: the backoff ended
 *   backoff --> reloading: reload (it goes ahead)
 *   restarting --> serving: the restarted worker is ready
 *   restarting --> backoff: it failed to start
 *   serving --> stopping: stop
 *   reloading --> stopping: stop (waits for the reload)
 *   backoff --> stopping: stop
 *   restarting --> stopping: stop
 *   stopping --> stopped
 * ```
 */
import type { SupervisorCode } from './errors.js';

/** ReloadStep is one of the six steps of a reload (see reload.ts). */
export type ReloadStep =
  | 'reload-configuration'
  | 'rebind'
  | 'start-new-worker'
  | 'handle-failure'
  | 'hand-over'
  | 'close-removed-ports';

/** Phase is what the supervisor is doing. */
export type Phase =
  | { name: 'starting' }
  | { name: 'serving' }
  | { name: 'reloading'; step: ReloadStep }
  /** The serving worker died; restart number `attempt` is due at `dueAt` (ms since the epoch). */
  | { name: 'backoff'; attempt: number; dueAt: number }
  /** Restart number `attempt` is under way: its worker is starting. */
  | { name: 'restarting'; attempt: number }
  | { name: 'stopping' }
  | { name: 'stopped' };

/** PhaseName is the name of a phase. */
export type PhaseName = Phase['name'];

/** SupervisorState is where the supervisor is in its life: the public view of its phase. */
export type SupervisorState = 'starting' | 'running' | 'stopping' | 'stopped';

/** stateOf gives the public state of a phase. */
export function stateOf(phase: Phase): SupervisorState {
  switch (phase.name) {
    case 'starting':
      return 'starting';
    case 'serving':
    case 'reloading':
    case 'backoff':
    case 'restarting':
      return 'running';
    case 'stopping':
      return 'stopping';
    case 'stopped':
      return 'stopped';
  }
}

/** describePhase names a phase in log lines: `reloading (rebind)`, `backoff (restart 2 in 400 ms)`. */
export function describePhase(phase: Phase, now: number): string {
  switch (phase.name) {
    case 'reloading':
      return `reloading (${phase.step})`;
    case 'backoff':
      return `backoff (restart ${phase.attempt} in ${Math.max(0, phase.dueAt - now)} ms)`;
    case 'restarting':
      return `restarting (restart ${phase.attempt})`;
    default:
      return phase.name;
  }
}

/** Request is something asked of the supervisor: by a user (reload, stop) or by its clock (restart). */
export type Request = 'reload' | 'stop' | 'restart';

/**
 * Verdict is what a request does in a phase: `run` now; `queue` until the phase ends (then it is
 * asked again); `join` the same request already under way; `drop` (nothing to do); or `refuse`
 * with a named code.
 */
export type Verdict =
  | { do: 'run' }
  | { do: 'queue'; until: string }
  | { do: 'join' }
  | { do: 'drop'; why: string }
  | { do: 'refuse'; code: SupervisorCode };

const run: Verdict = { do: 'run' };

/** requests is what each request does in each phase. */
export const requests: { readonly [R in Request]: { readonly [P in PhaseName]: Verdict } } = {
  reload: {
    starting: { do: 'refuse', code: 'SUP_ERR_NOT_READY' },
    serving: run,
    // Coalesced: every reload asked for during one shares the one reload that follows it.
    reloading: { do: 'queue', until: 'the reload under way has ended' },
    // No worker is alive to migrate from: the reload goes ahead, and cancels the restart if it succeeds.
    backoff: run,
    // It could not migrate from a worker that is still starting, nor replace it halfway.
    restarting: { do: 'queue', until: 'the restarted worker is ready or has failed' },
    stopping: { do: 'refuse', code: 'SUP_ERR_SHUTTING_DOWN' },
    stopped: { do: 'refuse', code: 'SUP_ERR_SHUTTING_DOWN' },
  },
  stop: {
    starting: run,
    serving: run,
    // The stop begins at once (no new reload starts) and waits for the reload to end.
    reloading: run,
    backoff: run,
    restarting: run,
    stopping: { do: 'join' },
    stopped: { do: 'join' },
  },
  restart: {
    starting: { do: 'drop', why: 'no worker has served yet' },
    serving: { do: 'drop', why: 'a worker serves' },
    // The reload decides: if it succeeds its worker serves, and if it fails the restart goes on.
    reloading: { do: 'queue', until: 'the reload under way has ended' },
    backoff: run,
    restarting: { do: 'drop', why: 'a restart is under way' },
    stopping: { do: 'drop', why: 'the supervisor is stopping' },
    stopped: { do: 'drop', why: 'the supervisor has stopped' },
  },
};

/** verdict is what `request` does in `phase`. */
export function verdict(request: Request, phase: Phase): Verdict {
  return requests[request][phase.name];
}
