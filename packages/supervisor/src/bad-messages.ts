/**
 * bad-messages — the log of the messages the supervisor dropped because a worker sent them malformed
 * or unknown (see message-shapes.ts in core). A worker runs arbitrary code and may send a flood of
 * them (of any types, known or made up): per worker, the first is logged in full at once, and those
 * that follow within a second are counted into one line when it ends.
 */
import type { NetplexLogger } from '@netplex/core';
import type { SupervisorEnv, TimerHandle } from './env.js';

/** The window over which dropped messages are counted into one line. */
const WINDOW_MS = 1000;

interface Window {
  count: number;
  timer: TimerHandle;
}

/** BadMessages logs dropped messages, aggregated per worker. */
export class BadMessages {
  readonly #logger: () => NetplexLogger;
  readonly #env: SupervisorEnv;
  readonly #windows = new Map<number, Window>();

  constructor(logger: () => NetplexLogger, env: SupervisorEnv) {
    this.#logger = logger;
    this.#env = env;
  }

  /** report records that worker `pid` sent a message of `type` that was dropped for `problem`. */
  report(pid: number, type: string, problem: string): void {
    const open = this.#windows.get(pid);
    if (open) {
      open.count++;
      return;
    }
    this.#logger().log(
      1,
      `worker ${pid} sent a ${shown(type)} message that is not valid (${problem}): ignored`,
      {
        worker: pid,
        type: shown(type),
      },
    );
    this.#arm(pid);
  }

  #arm(pid: number): void {
    const window: Window = {
      count: 0,
      timer: this.#env.setTimeout(() => {
        this.#windows.delete(pid);
        if (window.count === 0) return;
        this.#logger().log(
          1,
          `worker ${pid} sent ${window.count} more messages that are not valid in the last 1 s: ignored`,
          { worker: pid, ignored: window.count },
        );
        this.#arm(pid);
      }, WINDOW_MS),
    };
    this.#windows.set(pid, window);
  }
}

/** shown is a message type as the log may show it: escaped and cut short (a worker chose it). */
function shown(type: string): string {
  const escaped = JSON.stringify(type.length > 60 ? `${type.slice(0, 60)}…` : type).slice(1, -1);
  return escaped;
}
