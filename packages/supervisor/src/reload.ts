/**
 * reload — one reload, as the six steps of docs/guides/reload.md, each a function, called in order by run():
 *
 *   1. reloadConfiguration  the configuration from every source, afresh
 *   2. rebind               bind the ports not held yet; keep the others (port 0 keeps its port)
 *   3. startNewWorker       a worker of the current code, accepting once its loop starts
 *   4. handleFailure        if anything above (or the migration) failed: undo, report, old serves on
 *   5. handOver             the old worker migrates its connections or drains; the new one serves
 *   6. closeRemovedPorts    ports the configuration dropped close once the old worker has exited
 *
 * The supervisor runs one reload at a time (see phase.ts) and gives it a ReloadHost: what a reload
 * reads and changes of the supervisor's state.
 */
import {
  type BindTarget,
  type MigrationCounts,
  type NetplexLogger,
  pairPortSpecs,
  resolveBindTargets,
  type ServerConfig,
} from '@netplex/core';
import type { ListenAddress } from '@netplex/core/internal';
import { confTextOf, logNotices } from './configuration.js';
import type { SupervisorEnv } from './env.js';
import { SupervisorError } from './errors.js';
import type { ListenHandle } from './handles.js';
import type { HeldSockets } from './held-sockets.js';
import type { MigrationOutcome, TransportChoice } from './migration-relay.js';
import type { ReloadStep } from './phase.js';
import type { WorkerProcess } from './worker-process.js';

/** ReloadResult is the outcome of one reload. */
export type ReloadResult =
  | { ok: true; ms: number; workerPid: number; migration?: MigrationCounts }
  | { ok: false; error: string; code: string };

/** ReloadHost is the supervisor as a reload reads and changes it. */
export interface ReloadHost {
  readonly env: SupervisorEnv;
  readonly logger: NetplexLogger;
  readonly held: HeldSockets;
  /** step records the step the reload is in (the supervisor's phase). */
  step(step: ReloadStep): void;
  /** The configuration from every source; conf_file keys the loaded code does not know are skipped. */
  loadConfiguration(): Readonly<ServerConfig>;
  /** The worker serving now, if any. */
  current(): WorkerProcess | undefined;
  /** The bind targets the current worker was given (udp port 0 pinned to the port it got). */
  targets(): readonly BindTarget[];
  /** fork starts the next worker (the spare when there is one) for `config`. */
  fork(config: Readonly<ServerConfig>): WorkerProcess;
  /** The new worker, while it starts and while it migrates in (for status); undefined after. */
  incoming(worker: WorkerProcess | undefined, role: 'starting' | 'migrating-in'): void;
  /** migrate relays a migration from `old` to `neu` over the transport `choice` allows (see migration-relay.ts). */
  migrate(
    old: WorkerProcess,
    neu: WorkerProcess,
    drainMs: number,
    handles: Map<string, ListenHandle>,
    choice: TransportChoice,
  ): Promise<MigrationOutcome>;
  /** serveWith makes `worker` the current one, with `config`, the targets it serves and their addresses. */
  serveWith(
    worker: WorkerProcess,
    config: Readonly<ServerConfig>,
    targets: BindTarget[],
    addresses: ListenAddress[],
  ): void;
  /** retired keeps `old` listed as draining until it exits, then runs `exited`. */
  retired(old: WorkerProcess, exited: () => Promise<void>): void;
  /** updatePeers tells the workers with clients whether another one has clients too. */
  updatePeers(): void;
  /** ended records the reload's outcome (status, log) and starts the next spare. */
  ended(result: ReloadResult, migration: MigrationCounts | undefined): void;
}

/** Reload is one reload; run() it once. */
export class Reload {
  readonly #host: ReloadHost;
  readonly #began: number;
  readonly #old: WorkerProcess | undefined;
  #config!: Readonly<ServerConfig>;
  /** The bind targets of the new configuration, with the real ports of those already bound. */
  #targets: BindTarget[] = [];
  /** Keys of the targets the new configuration keeps, of those bound for it, and of those it drops. */
  #keep = new Set<string>();
  #added: string[] = [];
  #removed: string[] = [];
  #migrate = false;
  #worker: WorkerProcess | undefined;
  #addresses: ListenAddress[] = [];
  #startMs = 0;
  #migration: MigrationCounts | undefined;

  constructor(host: ReloadHost) {
    this.#host = host;
    this.#began = host.env.now();
    this.#old = host.current();
  }

  /** run runs the six steps; the result says how it went (a failure never throws). */
  async run(): Promise<ReloadResult> {
    this.#host.logger.log(2, 'reloading', { worker: this.#old?.pid });
    try {
      this.#reloadConfiguration();
      await this.#rebind();
      await this.#startNewWorker();
      await this.#handOver();
    } catch (err) {
      return this.#handleFailure(err);
    }
    this.#closeRemovedPorts();
    return this.#succeeded();
  }

  /** 1. The configuration from every source, read afresh (see Supervisor.loadConfiguration). */
  #reloadConfiguration(): void {
    this.#host.step('reload-configuration');
    this.#config = this.#host.loadConfiguration();
    logNotices(this.#config, this.#host.logger);
  }

  /**
   * 2. The ports: targets not held yet are bound; the others keep their sockets, and those bound
   * with port 0 keep their real port (tcp, unix: the held one's; udp: the one workers have bound).
   */
  async #rebind(): Promise<void> {
    const host = this.#host;
    host.step('rebind');
    const targets = await resolveBindTargets(pairPortSpecs(this.#config));
    this.#added = await host.held.bind(targets);
    this.#keep = new Set(targets.map((t) => t.key));
    this.#removed = host.held.keys().filter((k) => !this.#keep.has(k));
    const current = host.targets();
    this.#targets = targets.map(
      (t) => host.held.targetOf(t.key) ?? current.find((p) => p.key === t.key && p.proto === 'udp') ?? t,
    );
  }

  /**
   * 3. The new worker, given the handles of the kept and added ports. The old worker (or, after a
   * crash, the kernel's backlog) holds new connections until the new one is ready: it accepts only
   * then, so a start that fails takes none with it.
   */
  async #startNewWorker(): Promise<void> {
    const host = this.#host;
    host.step('start-new-worker');
    const old = this.#old;
    this.#migrate = this.#config.reload_mode === 'migrate' && old !== undefined && old.state !== 'exited';
    const worker = host.fork(this.#config);
    this.#worker = worker;
    host.incoming(worker, 'starting');
    try {
      this.#addresses = await worker.start(this.#targets, host.held.passable(this.#keep), {
        restarting: true,
        readyTimeoutMs: this.#config.ready_timeout * 1000,
        migrate: this.#migrate,
        deferAccept: true,
        confText: confTextOf(this.#config),
      });
    } finally {
      host.incoming(undefined, 'starting');
    }
    this.#startMs = host.env.now() - this.#began;
  }

  /**
   * 4. Anything above failed, or the new worker died during the migration: it is killed, the ports
   * bound for it are closed, and the old worker, which never stopped serving, serves on.
   */
  async #handleFailure(err: unknown): Promise<ReloadResult> {
    const host = this.#host;
    host.step('handle-failure');
    this.#worker?.kill();
    await host.held.release(this.#added);
    const e = err as Error & { code?: string };
    const message = e.message ?? String(err);
    // The message says what and where (file:line); a stack of the supervisor's own frames would not help.
    host.logger.log(0, `reload failed, the old worker keeps serving: ${message}`, {
      code: e.code,
      ms: host.env.now() - this.#began,
    });
    const result: ReloadResult = { ok: false, error: message, code: e.code ?? 'SUP_ERR_WORKER_FAILED' };
    host.ended(result, this.#migration);
    return result;
  }

  /**
   * 5. Only now does the old worker stop accepting: with reload_mode migrate it moves its
   * connections into the new worker, then drains what did not move; with drain it drains them all.
   * The new worker is the current one from here on.
   */
  async #handOver(): Promise<void> {
    const host = this.#host;
    host.step('hand-over');
    const old = this.#old;
    const worker = this.#worker!;
    const drainMs = this.#config.drain_timeout * 1000;
    if (this.#migrate && old) {
      host.incoming(worker, 'migrating-in');
      const outcome = await host
        .migrate(old, worker, drainMs, host.held.passable(this.#keep), this.#config.migration_transport)
        .finally(() => host.incoming(undefined, 'migrating-in'));
      this.#migration = outcome.counts;
      if (!outcome.ok) {
        host.updatePeers();
        throw new SupervisorError(
          'SUP_ERR_WORKER_FAILED',
          `the new worker ${worker.pid} failed during the migration`,
        );
      }
    }
    host.serveWith(worker, this.#config, pinUdpPorts(this.#targets, this.#addresses), this.#addresses);
    // A reload is over once new connections reach only the new worker: the old one says when it
    // has stopped accepting (bounded: see WorkerProcess.retire).
    if (old && old.state !== 'exited') await old.retire(drainMs);
  }

  /**
   * 6. Ports the new configuration dropped: the old worker may still serve connections that came
   * through them, so they close when it has exited (here, in the exit callback), or now if no old
   * worker is alive.
   */
  #closeRemovedPorts(): void {
    const host = this.#host;
    host.step('close-removed-ports');
    const old = this.#old;
    const removed = this.#removed;
    if (old && old.state !== 'exited') {
      host.retired(old, async () => {
        // A later reload may have added a port back meanwhile: what the configuration serves now stays.
        const served = new Set(host.targets().map((t) => t.key));
        await host.held.release(removed.filter((key) => !served.has(key)));
      });
    } else void host.held.release(removed);
    host.updatePeers();
  }

  #succeeded(): ReloadResult {
    const host = this.#host;
    const worker = this.#worker!;
    const ms = host.env.now() - this.#began;
    const migration = this.#migration;
    const moved = migration
      ? `: ${migration.migrated} connections migrated (${migration.transport ?? 'relay'}) in ${migration.ms} ms`
      : '';
    host.logger.log(2, `reloaded in ${ms} ms${moved}`, {
      worker: worker.pid,
      retired: this.#old?.pid,
      ms,
      mode: this.#migrate ? 'migrate' : 'drain',
      ...(migration?.transport ? { transport: migration.transport } : {}),
      start_ms: this.#startMs,
      ...(migration
        ? {
            migrated: migration.migrated,
            drained: migration.drained,
            failed: migration.failed,
            migrate_ms: migration.ms,
          }
        : {}),
    });
    const result: ReloadResult = { ok: true, ms, workerPid: worker.pid, ...(migration ? { migration } : {}) };
    host.ended(result, migration);
    return result;
  }
}

/**
 * pinUdpPorts gives each udp target bound with port 0 the port its worker got (addresses are the
 * worker's listeners, in the order of the targets), so that later workers bind that same port: the
 * supervisor holds no udp socket, and a port 0 would otherwise change with every worker.
 */
export function pinUdpPorts(targets: BindTarget[], addresses: readonly ListenAddress[]): BindTarget[] {
  if (addresses.length !== targets.length) return targets;
  return targets.map((t, i) => {
    const a = addresses[i]!;
    if (t.proto !== 'udp' || !('port' in t) || t.port !== 0 || a.proto !== 'udp') return t;
    return Object.freeze({ ...t, port: a.port }) as BindTarget;
  });
}

/**
 * ReloadRequests runs one reload at a time: every reload asked for while one runs shares the one
 * reload that follows it (coalesced), and gets its result.
 */
export class ReloadRequests {
  #running: Promise<ReloadResult> | undefined;
  #again: Array<(r: ReloadResult) => void> | undefined;

  /** running is the reload under way, if any. */
  get running(): Promise<ReloadResult> | undefined {
    return this.#running;
  }

  /** ask runs `reload` now, or once the one under way has ended (with every other request meanwhile). */
  ask(reload: () => Promise<ReloadResult>): Promise<ReloadResult> {
    const running = this.#running;
    if (running) {
      if (!this.#again) {
        const waiters: Array<(r: ReloadResult) => void> = [];
        this.#again = waiters;
        void running.then(() => {
          this.#again = undefined;
          void this.ask(reload).then((r) => {
            for (const w of waiters) w(r);
          });
        });
      }
      const waiters = this.#again;
      return new Promise((resolve) => waiters.push(resolve));
    }
    const started = reload().finally(() => {
      if (this.#running === started) this.#running = undefined;
    });
    this.#running = started;
    return started;
  }
}
