/**
 * defaults — every internal timing of the supervisor and the `netplex` command, in one place.
 * (What a user sets, ready_timeout, drain_timeout and the restart_backoff options, is in the option
 * schema instead.)
 */

/** How long a worker told to stop has before it is killed, beyond the drain it was given. */
export const STOP_KILL_AFTER_MS = 10_000;

/** How long `status` waits for a worker's live figures before it shows none for it. */
export const WORKER_STATUS_TIMEOUT_MS = 2_000;
/** How long a reload waits for the old worker to say it stopped accepting before it is over anyway. */
export const RETIRE_ACK_MS = 2_000;

/** How long the control socket's client waits for an answer. */
export const CONTROL_ANSWER_TIMEOUT_MS = 60_000;

/** How long `netplex status` waits for the supervisor's answer. */
export const STATUS_ANSWER_TIMEOUT_MS = 10_000;

/** How often `netplex stop` looks whether the server is gone. */
export const STOP_POLL_MS = 50;

/** How long `netplex dev` waits after the last save before it reloads (editors write in bursts). */
export const DEV_SETTLE_MS = 50;

/** How long after the first worker is ready the first spare starts (see spare.ts). */
export const SPARE_DELAY_MS = 500;
