/**
 * held-sockets — the listen sockets the supervisor holds, by bind-target key: bound once, passed to
 * every worker, kept across reloads (a port-0 target keeps its real port), closed when the
 * configuration drops their port or the supervisor stops. UDP ports are not held (each worker binds
 * its own).
 */
import { type BindTarget, removeStaleUnixSocket } from '@netplex/core';
import { closeHandle, createListenHandle, handlePort, isPassable, type ListenHandle } from './handles.js';

interface HeldSocket {
  target: BindTarget;
  handle: ListenHandle;
}

/** HeldSockets are the supervisor's listen sockets. */
export class HeldSockets {
  readonly #held = new Map<string, HeldSocket>();

  /** bind binds the targets not held yet and returns their keys; on failure none of them stays bound. */
  async bind(targets: readonly BindTarget[]): Promise<string[]> {
    const added: string[] = [];
    try {
      for (const target of targets) {
        if (!isPassable(target) || this.#held.has(target.key)) continue;
        // A socket file left by a dead server is replaced; one a live server answers on is an error.
        if ('path' in target) await removeStaleUnixSocket(target.path, target.label);
        const handle = createListenHandle(target);
        const port = 'port' in target && target.port === 0 ? handlePort(handle) : undefined;
        const held = port === undefined ? target : ({ ...target, port } as BindTarget);
        this.#held.set(target.key, { target: held, handle });
        added.push(target.key);
      }
    } catch (err) {
      await this.release(added);
      throw err;
    }
    return added;
  }

  /** release closes the sockets of these keys (those not held are skipped). */
  async release(keys: Iterable<string>): Promise<void> {
    for (const key of [...keys]) {
      const held = this.#held.get(key);
      if (!held) continue;
      this.#held.delete(key);
      await closeHandle(held.handle);
    }
  }

  /** releaseAll closes every socket. */
  releaseAll(): Promise<void> {
    return this.release(this.#held.keys());
  }

  /** keys lists the held targets' keys. */
  keys(): string[] {
    return [...this.#held.keys()];
  }

  /** targetOf is the held target of `key` (with its real port), if held. */
  targetOf(key: string): BindTarget | undefined {
    return this.#held.get(key)?.target;
  }

  /** passable gives the handles to pass a worker: those of `keys`, or all. */
  passable(keys?: ReadonlySet<string>): Map<string, ListenHandle> {
    const out = new Map<string, ListenHandle>();
    for (const [key, held] of this.#held) if (!keys || keys.has(key)) out.set(key, held.handle);
    return out;
  }

  /** leaked names the sockets still held (none once a stop has closed them: anything else is a leak). */
  leaked(): string[] {
    return [...this.#held.values()].map((h) => h.target.label);
  }
}
