/**
 * server/hook-runner — runs the server-wide hooks: each by its name in hooks.ts, awaited, a failure
 * wrapped as a HookError that names the hook (netplex's own errors pass as they are), and each
 * beginning and end told to an observer (the worker reports them, so that a start that hangs names
 * its hook).
 */
import { HookError, MultiplexError } from '../errors.js';
import type { ProcessHookMethods, ProcessHookName } from '../hooks.js';

/** HookObserver is told as each server-wide hook begins (its name) and ends (undefined). */
export type HookObserver = (hook: ProcessHookName | undefined) => void;

/** The hooks that take no argument: the runner calls these by name. */
type PlainHook = Exclude<ProcessHookName, 'fatalHook' | 'serverThaw' | 'serverFreeze'>;

/** HookRunner runs one server's server-wide hooks. */
export class HookRunner {
  readonly #server: ProcessHookMethods;
  readonly #logError: (err: unknown) => void;
  #observer: HookObserver | undefined;

  constructor(server: ProcessHookMethods, logError: (err: unknown) => void) {
    this.#server = server;
    this.#logError = logError;
  }

  /** observe sets (or with undefined, removes) the observer. */
  observe(fn: HookObserver | undefined): void {
    this.#observer = fn;
  }

  /** run runs hook `name` to its end; it rejects with a HookError naming it when the hook fails. */
  async run(name: PlainHook): Promise<void> {
    this.#observer?.(name);
    try {
      await this.#server[name]();
    } catch (err) {
      throw err instanceof MultiplexError ? err : new HookError(name, err);
    } finally {
      this.#observer?.(undefined);
    }
  }

  /** runLogged runs hook `name`; a failure is logged and the flow goes on. */
  async runLogged(name: PlainHook): Promise<void> {
    await this.run(name).catch((err) => this.#logError(err));
  }

  /** fatal runs fatalHook with the error that stopped the server; a failure of its own is logged. */
  async fatal(error: Error): Promise<void> {
    try {
      await this.#server.fatalHook(error);
    } catch (hookErr) {
      this.#logError(new HookError('fatalHook', hookErr));
    }
  }
}
