/**
 * supervisor — the process that owns the configuration, the pid file and the listen sockets, and
 * runs one worker at a time.
 *
 * One object owns all supervisor state, and what it is doing is one value, its phase (phase.ts), changed
 * in one place; what each request does in each phase is one table there. The reload is in reload.ts, the
 * migration relay, the broadcast relay, the held sockets, restarts and the spare in files of their own. At
 * every instant at least one process accepts on every port (the old worker until the new one is ready),
 * and while no worker is alive the bound sockets wait in the kernel's backlog.
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
import { BadMessages } from './bad-messages.js';
import { BroadcastRelay } from './broadcast-relay.js';
import { confTextOf, createSupervisorLogger, loadServerConfiguration, logNotices } from './configuration.js';
import { STOP_KILL_AFTER_MS } from './defaults.js';
import { Draining } from './draining.js';
import { realEnv, type SupervisorEnv } from './env.js';
import type { ListenHandle } from './handles.js';
import { HeldSockets } from './held-sockets.js';
import { hasIds, resolveIds } from './ids.js';
import {
  type MigrationOutcome,
  MigrationRelay,
  type TransportChoice,
  transportFrom,
} from './migration-relay.js';
import type { SupervisorOptions } from './options.js';
import { describePhase, type Phase, type SupervisorState, stateOf, verdict } from './phase.js';
import { checkPidFile, removePidFile, writePidFile } from './pidfile.js';
import { pinUdpPorts, Reload, type ReloadHost, ReloadRequests, type ReloadResult } from './reload.js';
import { Restarts } from './restarts.js';
import { Spare } from './spare.js';
import { gatherStatus, listProcesses, type SupervisorStatus, type WorkerRole } from './status.js';
import { closeHandleCopy, type WorkerExit, WorkerProcess } from './worker-process.js';

/** Supervisor runs a server's workers; see the module comment. */
export class Supervisor {
  config!: Readonly<ServerConfig>;
  logger!: NetplexLogger;
  readonly startedAt = new Date();
  reloads = 0;
  restarts = 0;
  lastReloadMs: number | null = null;
  lastReloadError: string | null = null;
  /** What the last migrating reload moved. */
  lastMigration: MigrationCounts | null = null;

  readonly #opts: SupervisorOptions;
  readonly #env: SupervisorEnv;
  #phase: Phase = { name: 'starting' };
  readonly #held = new HeldSockets();
  #targets: BindTarget[] = [];
  #worker: WorkerProcess | undefined;
  readonly #spare: Spare;
  /** Workers replaced by a reload that are still serving their last connections. */
  readonly #draining = new Draining();
  readonly #badMessages: BadMessages;
  /** The new worker of a reload, while it starts (before it is ready). */
  #incoming: WorkerProcess | undefined;
  /** The new worker of a migration under way, until the reload adopts it (or it fails). */
  #migratingIn: WorkerProcess | undefined;
  /** The migration under way, which the messages between its two workers go through. */
  #migration: MigrationRelay | undefined;
  readonly #broadcasts: BroadcastRelay;
  readonly #restarts: Restarts;
  /** The last generation given to a worker (see WorkerInfo.generation). */
  #generation = 0;
  #addresses: ListenAddress[] = [];
  /** The reload under way (or waiting for a restart's worker), and those asked for meanwhile. */
  readonly #reloads = new ReloadRequests();
  #stopping: Promise<void> | undefined;
  /** Resolves when a stop begins, for what waits on something the stop cuts short. */
  #resolveStopBegun!: () => void;
  readonly #stopBegun = new Promise<void>((resolve) => {
    this.#resolveStopBegun = resolve;
  });
  #resolveStopped!: (code: number) => void;
  /** stopped resolves with the exit code once the supervisor has stopped. */
  readonly stopped: Promise<number> = new Promise((resolve) => {
    this.#resolveStopped = resolve;
  });

  constructor(opts: SupervisorOptions) {
    const self = this;
    this.#opts = opts;
    this.#env = opts.env ?? realEnv;
    this.#badMessages = new BadMessages(() => this.logger, this.#env);
    const { execArgv, workerEnv, workerStderrLine } = opts;
    this.#spare = new Spare(
      () =>
        new WorkerProcess({
          argv: [],
          execArgv,
          env: workerEnv,
          onStderrLine: workerStderrLine,
          supervisorEnv: this.#env,
        }),
      opts.spare !== false,
      opts.initialSpare,
      this.#env,
    );
    this.#restarts = new Restarts(this.#env, {
      get logger() {
        return self.logger;
      },
      config: () => this.config,
      phase: () => this.#phase,
      setPhase: (phase) => this.#setPhase(phase),
      reloading: () => this.#reloads.running,
      current: () => this.#worker,
      forkCurrent: () => {
        const worker = this.#fork();
        this.#adopt(worker);
        return worker;
      },
      start: async (worker) => {
        this.#addresses = await worker.start(this.#targets, this.#held.passable(), {
          restarting: false,
          readyTimeoutMs: this.config.ready_timeout * 1000,
          deferAccept: true,
          confText: confTextOf(this.config),
        });
      },
      restarted: () => {
        this.restarts++;
        // A worker replaced by a reload may still be draining: the two share broadcasts.
        this.#broadcasts.update();
        this.#prepareSpare();
      },
    });
    this.#broadcasts = new BroadcastRelay({
      pair: () => [this.#worker, this.#migratingIn],
      migrating: () => this.#migratingIn !== undefined,
      serving: () => this.#serving(),
    });
  }

  /** state is where the supervisor is in its life (a view of its phase). */
  get state(): SupervisorState {
    return stateOf(this.#phase);
  }

  /** phase is what the supervisor is doing (see phase.ts). */
  get phase(): Readonly<Phase> {
    return this.#phase;
  }

  /** setPhase is the one place the phase changes. */
  #setPhase(next: Phase): void {
    const now = this.#env.now();
    const from = describePhase(this.#phase, now);
    this.#phase = next;
    this.logger?.log(4, `phase: ${from} → ${describePhase(next, now)}`);
  }

  /** loadConfiguration resolves the configuration from every source (see loadServerConfiguration). */
  loadConfiguration(reload = false): Readonly<ServerConfig> {
    return loadServerConfiguration(this.#opts, reload);
  }

  /**
   * start resolves the configuration, checks the pid file, binds every port, starts the first worker
   * and writes the pid file once it is ready. Any failure is thrown, with nothing left bound.
   */
  async start(): Promise<void> {
    let first: WorkerProcess | undefined;
    this.config = this.loadConfiguration();
    this.logger = createSupervisorLogger(this.config, this.#opts.logDestination);
    logNotices(this.config, this.logger);
    try {
      if (this.config.pid_file) {
        const { stale } = checkPidFile(this.config.pid_file);
        if (stale !== undefined)
          this.logger.log(
            2,
            `pid_file ${this.config.pid_file} named pid ${stale}, which is not running: replacing it`,
          );
      }
      this.#targets = await resolveBindTargets(pairPortSpecs(this.config));
      await this.#held.bind(this.#targets);
      const worker = this.#fork();
      first = worker;
      // The first worker is the first to listen on the sockets: it accepts from its bind on, and
      // holds what arrives during its start-up hooks until its loop starts.
      this.#addresses = await worker.start(this.#targets, this.#held.passable(), {
        restarting: false,
        readyTimeoutMs: this.config.ready_timeout * 1000,
        confText: confTextOf(this.config),
      });
      this.#targets = pinUdpPorts(this.#targets, this.#addresses);
      this.#adopt(worker);
      if (this.config.pid_file) writePidFile(this.config.pid_file);
      this.#setPhase({ name: 'serving' });
      this.#prepareSpare();
      this.logger.log(2, `netplex supervisor ${process.pid} serving with worker ${worker.pid}`, {
        worker: worker.pid,
        ports: this.#addresses,
      });
    } catch (err) {
      // The first worker, not ready: it closes what it holds (connections that came during its
      // start-up hooks, with one log line) and exits, or is killed after a bound.
      if (first && first.state !== 'exited') await first.stopWithin(STOP_KILL_AFTER_MS);
      this.#spare.kill();
      await this.#closeAll();
      this.#setPhase({ name: 'stopped' });
      throw err;
    }
  }

  /** addresses are where the server listens (the real ports once bound). */
  get addresses(): ListenAddress[] {
    return this.#addresses;
  }

  /** workerPid is the pid of the worker serving now. */
  get workerPid(): number | undefined {
    return this.#worker?.state === 'exited' ? undefined : this.#worker?.pid;
  }

  /** status gathers what `netplex status` shows. */
  status(): Promise<SupervisorStatus> {
    const rows = listProcesses([
      [this.#worker, this.#worker?.state === 'starting' ? 'starting' : 'serving'],
      [this.#incoming, 'starting'],
      [this.#migratingIn, 'migrating-in'],
      ...this.#draining.workers.map((w): [WorkerProcess, WorkerRole] => [w, 'draining']),
      [this.#spare.current, 'spare'],
    ]);
    return gatherStatus(rows, this.#worker, {
      state: this.state,
      supervisor_pid: process.pid,
      worker_pid: this.workerPid ?? null,
      started_at: this.startedAt.toISOString(),
      reloads: this.reloads,
      last_reload_ms: this.lastReloadMs,
      last_reload_error: this.lastReloadError,
      last_migration: this.lastMigration,
      migration_transport: transportFrom(this.config.migration_transport, this.#worker),
      ports: this.#addresses,
      restarts: this.restarts,
    });
  }

  /**
   * reload replaces the worker with a fresh one running the current code and configuration, with no
   * refused or dropped connection. Requests during a reload are coalesced into one more after it;
   * what a reload does in each phase is in phase.ts.
   */
  reload(): Promise<ReloadResult> {
    const refused = this.#refusedReload();
    if (refused) return Promise.resolve(refused);
    return this.#reloads.ask(async () => {
      // The last check and the reload's start are one synchronous step: a restart that comes due
      // in between would otherwise start beside the reload.
      for (;;) {
        await this.#afterRestart();
        const refusedNow = this.#refusedReload();
        if (refusedNow) return refusedNow;
        if (this.#phase.name !== 'restarting') return this.#runReload();
      }
    });
  }

  /** refusedReload is the answer to a reload the phase refuses, or undefined when it takes it. */
  #refusedReload(): ReloadResult | undefined {
    const v = verdict('reload', this.#phase);
    if (v.do !== 'refuse') return undefined;
    return { ok: false, code: v.code, error: `cannot reload: the supervisor is ${this.state}` };
  }

  /**
   * afterRestart waits until a crash restart's worker is ready or has failed: a reload cannot
   * migrate from a worker that is still starting, nor replace it halfway.
   */
  async #afterRestart(): Promise<void> {
    // A stop meanwhile ends the wait: the reload is then refused, and the stop goes on at once.
    while (this.#restarts.starting && this.state === 'running')
      await Promise.race([this.#restarts.starting, this.#stopBegun]);
  }

  async #runReload(): Promise<ReloadResult> {
    this.#setPhase({ name: 'reloading', step: 'reload-configuration' });
    const result = await new Reload(this.#reloadHost()).run();
    this.#settle();
    return result;
  }

  /**
   * settle sets the phase once a reload has ended: serving, or back to a restart's backoff when one
   * is pending or the serving worker is gone (a stop under way keeps its phase).
   */
  #settle(): void {
    if (this.#phase.name === 'stopping' || this.#phase.name === 'stopped') return;
    const worker = this.#worker;
    if (this.#restarts.pending || !worker || worker.state === 'exited')
      this.#setPhase({
        name: 'backoff',
        attempt: this.#restarts.attempt,
        dueAt: this.#restarts.dueAt ?? this.#env.now(),
      });
    else this.#setPhase({ name: 'serving' });
  }

  /** reloadHost is this supervisor as a reload reads and changes it (see ReloadHost). */
  #reloadHost(): ReloadHost {
    return {
      env: this.#env,
      logger: this.logger,
      held: this.#held,
      step: (step) => {
        const phase = this.#phase;
        if (phase.name === 'reloading' && phase.step !== step) this.#setPhase({ name: 'reloading', step });
      },
      loadConfiguration: () => this.loadConfiguration(true),
      current: () => this.#worker,
      targets: () => this.#targets,
      fork: (config) => this.#fork(config),
      incoming: (worker, role) => {
        if (role === 'starting') this.#incoming = worker;
        else this.#migratingIn = worker;
      },
      migrate: (old, neu, drainMs, handles, choice) =>
        this.#relayMigration(old, neu, drainMs, handles, choice),
      serveWith: (worker, config, targets, addresses) => {
        this.config = config;
        this.#targets = targets;
        this.#addresses = addresses;
        // The new worker is the current one: a crash restart still waiting for its backoff is not needed.
        if (this.#restarts.cancel())
          this.logger.log(3, 'the pending restart is cancelled: the reload put a worker in place');
        this.#adopt(worker);
      },
      retired: (old, exited) => {
        this.#draining.add(old, this.config.max_draining, this.logger, async () => {
          this.#broadcasts.update();
          await exited();
        });
      },
      updatePeers: () => this.#broadcasts.update(),
      ended: (result, migration) => {
        if (result.ok) {
          this.reloads++;
          this.lastReloadMs = result.ms;
          this.lastReloadError = null;
          this.lastMigration = migration ?? null;
        } else this.lastReloadError = result.error;
        this.#prepareSpare();
      },
    };
  }

  /** relayMigration relays a migration from `old` to `neu` (see migration-relay.ts). */
  async #relayMigration(
    old: WorkerProcess,
    neu: WorkerProcess,
    drainMs: number,
    handles: Map<string, ListenHandle>,
    choice: TransportChoice,
  ): Promise<MigrationOutcome> {
    // Both relay broadcasts from the start of the migration (the new worker from its start).
    this.#broadcasts.migrationBegins(old, neu);
    const relay = new MigrationRelay(old, neu, handles, () => this.#env.now());
    this.#migration = relay;
    return relay.start(drainMs, choice).finally(() => {
      if (this.#migration === relay) this.#migration = undefined;
    });
  }

  #fork(config: Readonly<ServerConfig> = this.config): WorkerProcess {
    const worker = this.#forkProcess(config);
    worker.generation = ++this.#generation;
    // What a worker sends for another worker: a broadcast, or a migration's traffic.
    worker.onRelayed = (m, handle) => {
      if (m.type === 'netplex:broadcast') this.#broadcasts.relay(worker, m);
      else if (this.#migration) this.#migration.take(worker, m, handle);
      else closeHandleCopy(handle);
    };
    worker.onBadMessage = (type, problem) => this.#badMessages.report(worker.pid, type, problem);
    return worker;
  }

  #forkProcess(config: Readonly<ServerConfig>): WorkerProcess {
    const { entry, argv, execArgv, workerEnv, workerStderrLine } = this.#opts;
    const ids = resolveIds(config, this.#env);
    return this.#spare.next(
      !hasIds(ids),
      (spare) => spare.load(entry, argv),
      () =>
        new WorkerProcess({
          entry,
          argv,
          execArgv,
          env: workerEnv,
          uid: ids.uid,
          gid: ids.gid,
          onStderrLine: workerStderrLine,
          supervisorEnv: this.#env,
        }),
    );
  }

  /** serving lists the workers with clients: the current one, those retiring, and one migrating in. */
  #serving(): WorkerProcess[] {
    const all = [this.#worker, this.#migratingIn, ...this.#draining.workers];
    return [...new Set(all)].filter((w): w is WorkerProcess => w !== undefined && w.state !== 'exited');
  }

  /** prepareSpare starts the next worker ahead of time (see spare.ts), while serving. */
  #prepareSpare(): void {
    this.#spare.prepare(() => this.state === 'running' && !hasIds(resolveIds(this.config, this.#env)));
  }

  /** adopt makes `worker` the current one and watches it for a crash or an endloop. */
  #adopt(worker: WorkerProcess): void {
    this.#worker = worker;
    void worker.exited.then((exit) => this.#onWorkerExit(worker, exit));
  }

  #onWorkerExit(worker: WorkerProcess, exit: WorkerExit): void {
    if (worker !== this.#worker) return; // a retired worker finishing its drain
    if (this.state !== 'running') return;
    if (worker.endloop) {
      this.logger.log(2, `worker ${worker.pid} ended its loop: stopping`);
      void this.stop();
      return;
    }
    this.#restarts.crashed(worker, exit);
  }

  /** signalWorkers passes `signal` on to every worker with clients (sig_passthrough). */
  signalWorkers(signal: NodeJS.Signals): void {
    for (const worker of this.#serving()) worker.kill(signal);
  }

  /** reopenLogs reopens the supervisor's and the worker's log files (SIGUSR1, for logrotate). */
  reopenLogs(): void {
    this.logger.reopen();
    this.#worker?.reopenLogs();
  }

  /**
   * stop ends everything: the worker runs its close hooks and exits (killed after a bound), the
   * sockets close, the pid file is removed. With `graceful`, the worker drains first (SIGQUIT).
   */
  stop(options: { graceful?: boolean } = {}): Promise<void> {
    this.#stopping ??= this.#doStop(options.graceful ?? false);
    return this.#stopping;
  }

  async #doStop(graceful: boolean): Promise<void> {
    this.#setPhase({ name: 'stopping' });
    this.#resolveStopBegun();
    this.#restarts.cancel();
    this.#spare.kill();
    await this.#reloads.running?.catch(() => {});
    const drainMs = graceful ? (this.config?.drain_timeout ?? 0) * 1000 : 0;
    const worker = this.#worker;
    if (worker && worker.state !== 'exited') {
      this.logger.log(2, graceful ? 'stopping gracefully: draining connections' : 'stopping', {
        worker: worker.pid,
      });
      const exited = worker.stopOrKill(graceful, drainMs);
      // The worker stops accepting at once; close our copies too, so that new connections are
      // refused instead of waiting in a backlog nobody will accept from.
      await this.#held.releaseAll();
      await exited;
    }
    // Workers still draining after a reload: a plain stop ends them now, a graceful one lets them
    // drain for at most drain_timeout.
    await Promise.all(this.#draining.workers.map((w) => w.stopOrKill(graceful, drainMs)));
    await this.#closeAll();
    const leaked = this.#held.leaked();
    if (leaked.length > 0)
      this.logger?.log(0, `netplex bug: sockets still held after the stop: ${leaked.join(', ')}`);
    this.#setPhase({ name: 'stopped' });
    this.logger?.log(2, 'netplex supervisor stopped');
    this.logger?.flush();
    this.#resolveStopped(0);
  }

  async #closeAll(): Promise<void> {
    await this.#held.releaseAll();
    if (this.config?.pid_file) removePidFile(this.config.pid_file);
  }
}
