/**
 * supervisor — the process that owns the configuration, the pid file and the listen sockets, and
 * runs one worker at a time.
 *
 * One object owns all supervisor state, and every change goes through its methods: start, reload,
 * the crash-restart loop, stop. At every instant at least one process accepts on every port (the
 * old worker until the new one is ready), and while no worker is alive the bound sockets wait in
 * the kernel's backlog.
 */
import { readFileSync } from 'node:fs';
import {
  type AnyMultiplexServer,
  type BindTarget,
  createLogger,
  loadConfig,
  type MigrationCounts,
  type MultiplexServer,
  type NetplexLogger,
  type OptionsShape,
  pairPortSpecs,
  removeStaleUnixSocket,
  resolveBindTargets,
  type ServerConfig,
  serverOptions,
} from '@netplex/core';
import {
  isNetplexMessage,
  type ListenAddress,
  type PeerBroadcastMessage,
  type WorkerMessage,
} from '@netplex/core/internal';
import { SupervisorError } from './errors.js';
import { closeHandle, createListenHandle, handlePort, isPassable, type ListenHandle } from './handles.js';
import { checkPidFile, removePidFile, writePidFile } from './pidfile.js';
import { type WorkerExit, WorkerProcess } from './worker-process.js';

/** SupervisorState is where the supervisor is in its life. */
export type SupervisorState = 'starting' | 'running' | 'stopping' | 'stopped';

/** ReloadResult is the outcome of one reload. */
export type ReloadResult =
  | { ok: true; ms: number; workerPid: number; migration?: MigrationCounts }
  | { ok: false; error: string; code: string };

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
}

/**
 * WorkerRole is what one of the supervisor's processes is doing: `serving` (the current worker),
 * `starting` (a reload's new worker, or a restart's, not ready yet), `migrating-in` (a reload's new
 * worker taking the old one's connections), `draining` (replaced, serving its last connections),
 * `spare` (started ahead, waiting to be given the entry).
 */
export type WorkerRole = 'serving' | 'starting' | 'migrating-in' | 'draining' | 'spare';

/** WorkerInfo is one row of `netplex status`'s worker list. */
export interface WorkerInfo {
  pid: number;
  role: WorkerRole;
  /** Grows by one with each worker given the entry (the first, each reload, each restart); null for a spare. */
  generation: number | null;
  /** Connections open now; null when the worker does not say (a spare, one too busy to answer). */
  connections: number | null;
  started_at: string;
}

/** SupervisorStatus is what `netplex status` shows. */
export interface SupervisorStatus {
  state: SupervisorState;
  supervisor_pid: number;
  worker_pid: number | null;
  started_at: string;
  reloads: number;
  last_reload_ms: number | null;
  last_reload_error: string | null;
  /** What the last migrating reload moved: migrated, drained, failed connections and its ms. */
  last_migration: MigrationCounts | null;
  connections: number | null;
  requests: number | null;
  ports: ListenAddress[];
  restarts: number;
  /** Every process the supervisor has started and that is alive, in the order of WorkerRole. */
  workers: WorkerInfo[];
}

interface HeldSocket {
  target: BindTarget;
  handle: ListenHandle;
}

/** Supervisor runs a server's workers; see the module comment. */
export class Supervisor {
  state: SupervisorState = 'starting';
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
  /** Sockets the supervisor holds, by target key. */
  #held = new Map<string, HeldSocket>();
  #targets: BindTarget[] = [];
  #worker: WorkerProcess | undefined;
  /** A worker started ahead of time, its runtime loaded, waiting to be given the entry. */
  #spare: WorkerProcess | undefined;
  /** Workers replaced by a reload that are still serving their last connections. */
  readonly #retiring = new Set<WorkerProcess>();
  /** The new worker of a reload, while it starts (before it is ready). */
  #incoming: WorkerProcess | undefined;
  /** The new worker of a migration under way, until the reload adopts it (or it fails). */
  #migratingIn: WorkerProcess | undefined;
  /** The last generation given to a worker (see WorkerInfo.generation). */
  #generation = 0;
  /** A crash restart's worker start under way: a reload waits for it (it could not migrate from it). */
  #restarting: Promise<void> | undefined;
  /** What each worker was last told by updatePeers. */
  readonly #peersOn = new WeakMap<WorkerProcess, boolean>();
  #addresses: ListenAddress[] = [];
  #reloading: Promise<ReloadResult> | undefined;
  #reloadAgain: Array<(r: ReloadResult) => void> | undefined;
  #crashes = 0;
  #restartTimer: NodeJS.Timeout | undefined;
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
    this.#opts = opts;
    this.#spare = opts.initialSpare;
  }

  /**
   * loadConfiguration resolves the configuration from every source; it throws a ConfigError when it
   * is bad. For a reload, conf_file keys this process's copy of the server does not know are skipped:
   * new code may add options, and the new worker, which loads that code, validates them.
   */
  loadConfiguration(reload = false): Readonly<ServerConfig> {
    const { server, runArgs, argv, cwd } = this.#opts;
    const ctor = server.constructor as typeof MultiplexServer;
    const shape = { ...serverOptions, ...ctor.options } as OptionsShape;
    const { config } = loadConfig(shape, {
      constructor: server.args,
      argv,
      run: runArgs,
      defaults: { ...this.#opts.defaults, ...server.defaultValues() },
      cwd: cwd ?? process.cwd(),
      confUnknown: reload ? 'skip' : 'error',
    });
    return config as unknown as Readonly<ServerConfig>;
  }

  /**
   * start resolves the configuration, checks the pid file, binds every port, starts the first worker
   * and writes the pid file once it is ready. Any failure is thrown, with nothing left bound.
   */
  async start(): Promise<void> {
    this.config = this.loadConfiguration();
    this.logger = createLogger({
      log_level: this.config.log_level,
      log_file: this.config.log_file,
      destination: this.#opts.logDestination,
      bindings: { role: 'supervisor' },
    });
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
      await this.#bindNew(this.#targets);
      const worker = this.#fork();
      // The first worker is the first to listen on the sockets: it accepts from its bind on, and
      // holds what arrives during its start-up hooks until its loop starts.
      this.#addresses = await worker.start(this.#targets, this.#passable(), {
        restarting: false,
        readyTimeoutMs: this.config.ready_timeout * 1000,
      });
      this.#targets = pinUdpPorts(this.#targets, this.#addresses);
      this.#adopt(worker);
      if (this.config.pid_file) writePidFile(this.config.pid_file);
      this.state = 'running';
      this.#prepareSpare();
      this.logger.log(2, `netplex supervisor ${process.pid} serving with worker ${worker.pid}`, {
        worker: worker.pid,
        ports: this.#addresses,
      });
    } catch (err) {
      this.#worker?.kill();
      this.#spare?.kill();
      this.#spare = undefined;
      await this.#closeAll();
      this.state = 'stopped';
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
  async status(): Promise<SupervisorStatus> {
    const rows = this.#processes();
    const figures = await Promise.all(
      rows.map(({ worker, role }) => (role === 'spare' ? undefined : worker.status())),
    );
    const live = figures[rows.findIndex((r) => r.worker === this.#worker)];
    const workers = rows.map(
      ({ worker, role }, i): WorkerInfo => ({
        pid: worker.pid,
        role,
        generation: role === 'spare' ? null : (worker.generation ?? null),
        connections: figures[i]?.connections ?? null,
        started_at: new Date(worker.startedAt).toISOString(),
      }),
    );
    return {
      state: this.state,
      supervisor_pid: process.pid,
      worker_pid: this.workerPid ?? null,
      started_at: this.startedAt.toISOString(),
      reloads: this.reloads,
      last_reload_ms: this.lastReloadMs,
      last_reload_error: this.lastReloadError,
      last_migration: this.lastMigration,
      connections: live?.connections ?? null,
      requests: live?.requests ?? null,
      ports: this.#addresses,
      restarts: this.restarts,
      workers,
    };
  }

  /** processes lists every live process this supervisor started, with its role. */
  #processes(): Array<{ worker: WorkerProcess; role: WorkerRole }> {
    const rows: Array<{ worker: WorkerProcess; role: WorkerRole }> = [];
    const seen = new Set<WorkerProcess>();
    const add = (worker: WorkerProcess | undefined, role: WorkerRole) => {
      if (!worker || worker.state === 'exited' || seen.has(worker)) return;
      seen.add(worker);
      rows.push({ worker, role });
    };
    add(this.#worker, this.#worker?.state === 'starting' ? 'starting' : 'serving');
    add(this.#incoming, 'starting');
    add(this.#migratingIn, 'migrating-in');
    for (const w of this.#retiring) add(w, 'draining');
    add(this.#spare, 'spare');
    return rows;
  }

  /**
   * reload replaces the worker with a fresh one running the current code and configuration, with no
   * refused or dropped connection. Requests during a reload are coalesced into one more after it.
   */
  reload(): Promise<ReloadResult> {
    if (this.state !== 'running') {
      const code = this.state === 'starting' ? 'SUP_ERR_NOT_READY' : 'SUP_ERR_SHUTTING_DOWN';
      return Promise.resolve({ ok: false, code, error: `cannot reload: the supervisor is ${this.state}` });
    }
    if (this.#reloading) {
      // Coalesce: every request that arrives during a reload shares the one reload that follows it.
      if (!this.#reloadAgain) {
        const waiters: Array<(r: ReloadResult) => void> = [];
        this.#reloadAgain = waiters;
        void this.#reloading.then(() => {
          this.#reloadAgain = undefined;
          void this.reload().then((r) => {
            for (const w of waiters) w(r);
          });
        });
      }
      const waiters = this.#reloadAgain;
      return new Promise((resolve) => waiters.push(resolve));
    }
    this.#reloading = this.#afterRestart()
      .then(() =>
        this.state === 'running'
          ? this.#doReload()
          : {
              ok: false as const,
              code: 'SUP_ERR_SHUTTING_DOWN',
              error: `cannot reload: the supervisor is ${this.state}`,
            },
      )
      .finally(() => {
        this.#reloading = undefined;
      });
    return this.#reloading;
  }

  /**
   * afterRestart waits until a crash restart's worker is ready or has failed: a reload cannot
   * migrate from a worker that is still starting, nor replace it halfway.
   */
  async #afterRestart(): Promise<void> {
    // A stop meanwhile ends the wait: the reload is then refused, and the stop goes on at once.
    while (this.#restarting && this.state === 'running')
      await Promise.race([this.#restarting, this.#stopBegun]);
  }

  async #doReload(): Promise<ReloadResult> {
    const began = Date.now();
    const old = this.#worker;
    this.logger.log(2, 'reloading', { worker: old?.pid });
    let config: Readonly<ServerConfig>;
    let targets: BindTarget[];
    const added: string[] = [];
    try {
      config = this.loadConfiguration(true);
      targets = await resolveBindTargets(pairPortSpecs(config));
      for (const key of await this.#bindNew(targets)) added.push(key);
    } catch (err) {
      return this.#reloadFailed(err, began);
    }
    const keep = new Set(targets.map((t) => t.key));
    const removed = [...this.#held.keys()].filter((k) => !keep.has(k));
    // Targets that were bound with port 0 keep their real port: take the held target's (tcp, unix)
    // or the one the workers have been binding (udp).
    const effective = targets.map(
      (t) =>
        this.#held.get(t.key)?.target ?? this.#targets.find((p) => p.key === t.key && p.proto === 'udp') ?? t,
    );
    const migrate = config.reload_mode === 'migrate' && old !== undefined && old.state !== 'exited';
    const worker = this.#fork(config);
    this.#incoming = worker;
    try {
      // The old worker (or, after a crash, the kernel's backlog) holds new connections until the
      // new one is ready: it accepts only then, so a start that fails takes none with it.
      this.#addresses = await worker.start(effective, this.#passable(keep), {
        restarting: true,
        readyTimeoutMs: config.ready_timeout * 1000,
        migrate,
        deferAccept: true,
      });
    } catch (err) {
      worker.kill();
      for (const key of added) await this.#release(key);
      return this.#reloadFailed(err, began);
    } finally {
      this.#incoming = undefined;
    }
    const startMs = Date.now() - began;
    let migration: MigrationCounts | undefined;
    if (migrate) {
      this.#migratingIn = worker;
      // Both relay broadcasts from the start of the migration (the new worker from its start).
      this.#peersOn.set(old, true);
      this.#peersOn.set(worker, true);
      const outcome = await this.#migrate(old, worker, config, this.#passable(keep)).finally(() => {
        this.#migratingIn = undefined;
      });
      migration = outcome.counts;
      if (!outcome.ok) {
        this.#updatePeers();
        for (const key of added) await this.#release(key);
        return this.#reloadFailed(
          new SupervisorError(
            'SUP_ERR_WORKER_FAILED',
            `the new worker ${worker.pid} failed during the migration`,
          ),
          began,
        );
      }
    }
    this.config = config;
    this.#targets = pinUdpPorts(effective, this.#addresses);
    // The new worker is the current one: a crash restart still waiting for its backoff is not needed.
    this.#cancelRestart();
    this.#adopt(worker);
    if (old && old.state !== 'exited') {
      // Only now does the old worker stop accepting (drain), or finish what did not move (migrate).
      if (!migrate) old.retire(config.drain_timeout * 1000);
      this.#retiring.add(old);
      void old.exited.then(async () => {
        this.#retiring.delete(old);
        this.#updatePeers();
        for (const key of removed) if (!keep.has(key)) await this.#release(key);
      });
    } else {
      for (const key of removed) await this.#release(key);
    }
    this.#updatePeers();
    const ms = Date.now() - began;
    this.reloads++;
    this.lastReloadMs = ms;
    this.lastReloadError = null;
    this.lastMigration = migration ?? null;
    this.logger.log(2, `reloaded in ${ms} ms`, {
      worker: worker.pid,
      retired: old?.pid,
      ms,
      mode: migrate ? 'migrate' : 'drain',
      start_ms: startMs,
      ...(migration
        ? {
            migrated: migration.migrated,
            drained: migration.drained,
            failed: migration.failed,
            migrate_ms: migration.ms,
          }
        : {}),
    });
    this.#prepareSpare();
    return { ok: true, ms, workerPid: worker.pid, ...(migration ? { migration } : {}) };
  }

  /**
   * migrate moves the old worker's connections into the new one, relaying the server state and
   * each socket handle (raw, so that the supervisor never reads from it), output written to a
   * connection after it was sent, and the acknowledgements (in batches). (Broadcasts made in either
   * worker meanwhile go to the other through relayBroadcast, which every worker has.)
   * If the new worker dies meanwhile, the connections still in the old worker stay there and it
   * accepts again; `ok` is then false.
   */
  #migrate(
    old: WorkerProcess,
    neu: WorkerProcess,
    config: Readonly<ServerConfig>,
    handles: Map<string, ListenHandle>,
  ): Promise<{ ok: boolean; counts: MigrationCounts }> {
    return new Promise((resolve) => {
      const pending = new Set<number>();
      let newDead = neu.state === 'exited';
      let sentState = false;
      let finished = false;
      const nack = (seqs: number[]) =>
        void old.send({ type: 'netplex:conn-ack', ok: [], failed: seqs }).catch(() => {});
      const closeCopy = (h: unknown) => (h as { close?: () => void } | undefined)?.close?.();
      const finish = async (counts: MigrationCounts) => {
        if (finished) return;
        finished = true;
        old.child.off('message', fromOld);
        neu.child.off('message', fromNew);
        // No connection waits for the old worker to let it go any longer (it may have died first).
        if (!newDead) void neu.send({ type: 'netplex:migration-end' }).catch(() => {});
        if (newDead && old.state !== 'exited') {
          // The connections that did not move stay with the old worker, which accepts again.
          try {
            await old.sendHandles(handles);
            await old.send({ type: 'netplex:resume' });
          } catch {}
          resolve({ ok: false, counts });
          return;
        }
        if (old.state !== 'exited') old.retire(config.drain_timeout * 1000);
        resolve({ ok: !newDead, counts });
      };
      const fromOld = (msg: unknown, handle?: unknown) => {
        if (!isNetplexMessage(msg)) return;
        const m = msg as WorkerMessage;
        if (m.type === 'netplex:server-state') {
          sentState = true;
          if (!newDead) void neu.send(m).catch(() => {});
        } else if (m.type === 'netplex:conn') {
          if (newDead) {
            closeCopy(handle);
            nack([m.seq]);
            return;
          }
          pending.add(m.seq);
          // Once the message is out, the descriptor travels in it: the supervisor's copy can go.
          neu.send(m, handle).then(
            () => closeCopy(handle),
            () => {
              closeCopy(handle);
              if (pending.delete(m.seq)) nack([m.seq]);
            },
          );
        } else if (m.type === 'netplex:released') {
          if (!newDead) void neu.send(m).catch(() => {});
        } else if (m.type === 'netplex:migrated') {
          void finish({ migrated: m.migrated, drained: m.drained, failed: m.failed, ms: m.ms });
        }
      };
      const fromNew = (msg: unknown) => {
        if (!isNetplexMessage(msg)) return;
        const m = msg as WorkerMessage;
        if (m.type !== 'netplex:conn-ack') return;
        const ok = m.ok.filter((seq) => pending.delete(seq));
        const failed = m.failed.filter((seq) => pending.delete(seq));
        if (ok.length > 0 || failed.length > 0)
          void old.send({ type: 'netplex:conn-ack', ok, failed }).catch(() => {});
      };
      void neu.exited.then(() => {
        newDead = true;
        if (pending.size > 0) nack([...pending]);
        pending.clear();
      });
      void old.exited.then(() => {
        // The old worker is gone: the new one must not wait for its counter any longer.
        if (!sentState && !newDead)
          void neu.send({ type: 'netplex:server-state', data: null }).catch(() => {});
        void finish({ migrated: 0, drained: 0, failed: 0, ms: 0 });
      });
      old.child.on('message', fromOld);
      neu.child.on('message', fromNew);
      void old.send({ type: 'netplex:migrate', drainTimeoutMs: config.drain_timeout * 1000 }).catch(() => {});
    });
  }

  #reloadFailed(err: unknown, began: number): ReloadResult {
    this.#prepareSpare();
    const e = err as Error & { code?: string };
    const message = e.message ?? String(err);
    this.lastReloadError = message;
    // The message says what and where (file:line); a stack of the supervisor's own frames would not help.
    this.logger.log(0, `reload failed, the old worker keeps serving: ${message}`, {
      code: e.code,
      ms: Date.now() - began,
    });
    return { ok: false, error: message, code: e.code ?? 'SUP_ERR_WORKER_FAILED' };
  }

  /** bindNew binds the targets not held yet and returns their keys. */
  async #bindNew(targets: BindTarget[]): Promise<string[]> {
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
      for (const key of added) await this.#release(key);
      throw err;
    }
    return added;
  }

  async #release(key: string): Promise<void> {
    const held = this.#held.get(key);
    if (!held) return;
    this.#held.delete(key);
    await closeHandle(held.handle);
  }

  #passable(keys?: Set<string>): Map<string, ListenHandle> {
    const out = new Map<string, ListenHandle>();
    for (const [key, held] of this.#held) if (!keys || keys.has(key)) out.set(key, held.handle);
    return out;
  }

  #fork(config: Readonly<ServerConfig> = this.config): WorkerProcess {
    const worker = this.#forkProcess(config);
    worker.generation = ++this.#generation;
    worker.child.on('message', (msg: unknown) => {
      if (isNetplexMessage(msg) && (msg as WorkerMessage).type === 'netplex:broadcast')
        this.#relayBroadcast(worker, msg as PeerBroadcastMessage);
    });
    return worker;
  }

  #forkProcess(config: Readonly<ServerConfig>): WorkerProcess {
    const { entry, argv, execArgv, workerEnv, workerStderrLine } = this.#opts;
    const ids = resolveIds(config);
    const spare = this.#spare;
    this.#spare = undefined;
    if (spare && spare.state !== 'exited' && ids.uid === undefined && ids.gid === undefined) {
      spare.load(entry, argv);
      return spare;
    }
    spare?.kill();
    return new WorkerProcess({
      entry,
      argv,
      execArgv,
      env: workerEnv,
      uid: ids.uid,
      gid: ids.gid,
      onStderrLine: workerStderrLine,
    });
  }

  /** serving lists the workers with clients: the current one, those retiring, and one migrating in. */
  #serving(): WorkerProcess[] {
    const all = [this.#worker, this.#migratingIn, ...this.#retiring];
    return [...new Set(all)].filter((w): w is WorkerProcess => w !== undefined && w.state !== 'exited');
  }

  /**
   * relayBroadcast passes a `mux.broadcast` made in one worker to every other worker with clients
   * (during a migration, and while a replaced worker drains), so that all clients hear it.
   */
  #relayBroadcast(from: WorkerProcess, m: PeerBroadcastMessage): void {
    // The connections the sender names as covered are on their way between the two workers of a
    // migration; to any other worker (one draining), numbers may even name different connections.
    const pair = [this.#worker, this.#migratingIn];
    const plain: PeerBroadcastMessage = { type: 'netplex:broadcast', data: m.data };
    for (const w of this.#serving()) {
      if (w === from) continue;
      const peer = this.#migratingIn !== undefined && pair.includes(from) && pair.includes(w);
      void w.send(peer ? m : plain).catch(() => {});
    }
  }

  /**
   * updatePeers tells each worker with clients whether another one has clients too, so that its
   * broadcasts go on to the supervisor only then. Not during a migration, whose two workers relay
   * until it ends (the reload calls this again then).
   */
  #updatePeers(): void {
    if (this.#migratingIn) return;
    const serving = this.#serving();
    const on = serving.length > 1;
    for (const w of serving) {
      if (this.#peersOn.get(w) === on) continue;
      this.#peersOn.set(w, on);
      void w.send({ type: 'netplex:peers', on }).catch(() => {});
    }
  }

  /**
   * prepareSpare starts the next worker ahead of time: Node, the loader and netplex's runtime load
   * now, so that a reload or a restart pays only for loading the new code. Not when the worker runs
   * as another user (the spare would have to be started with those ids).
   */
  #prepareSpare(): void {
    if (this.state !== 'running' || this.#spare || this.#opts.spare === false) return;
    const ids = resolveIds(this.config);
    if (ids.uid !== undefined || ids.gid !== undefined) return;
    const { execArgv, workerEnv, workerStderrLine } = this.#opts;
    const spare = new WorkerProcess({ argv: [], execArgv, env: workerEnv, onStderrLine: workerStderrLine });
    this.#spare = spare;
    void spare.exited.then(() => {
      if (this.#spare === spare) this.#spare = undefined;
    });
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
    const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
    const ranMs = Date.now() - worker.startedAt;
    const backoff = this.#backoff();
    if (ranMs >= backoff.stableMs) this.#crashes = 0;
    const delay = Math.min(
      Math.max(backoff.maxMs, backoff.initialMs),
      backoff.initialMs * 2 ** this.#crashes,
    );
    this.#crashes++;
    this.logger.log(0, `worker ${worker.pid} died (${how}); restarting in ${delay} ms`, {
      worker: worker.pid,
      code: exit.code,
      signal: exit.signal,
      delay,
    });
    this.#restartTimer = setTimeout(() => void this.#restartWhenDue(), delay);
  }

  /** backoff is the crash-restart backoff in ms, from the restart_backoff options. */
  #backoff(): { initialMs: number; maxMs: number; stableMs: number } {
    const c = this.config;
    return {
      initialMs: c.restart_backoff * 1000,
      maxMs: c.restart_backoff_max * 1000,
      stableMs: c.restart_backoff_reset * 1000,
    };
  }

  /** cancelRestart drops a pending crash restart: a reload has put a worker in place. */
  #cancelRestart(): void {
    if (!this.#restartTimer) return;
    clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    this.logger.log(3, 'the pending restart is cancelled: the reload put a worker in place');
  }

  /**
   * restartWhenDue runs when a backoff ends. A reload under way at that moment decides: if it
   * succeeds, its worker is the current one and nothing restarts; if it fails, the restart goes on.
   */
  async #restartWhenDue(): Promise<void> {
    this.#restartTimer = undefined;
    while (this.#reloading) await this.#reloading;
    if (this.state !== 'running' || this.#worker?.state !== 'exited') return;
    const started = this.#restart();
    this.#restarting = started;
    try {
      await started;
    } finally {
      if (this.#restarting === started) this.#restarting = undefined;
    }
  }

  async #restart(): Promise<void> {
    const worker = this.#fork();
    this.#adopt(worker);
    try {
      // The sockets already listen, and connections wait in the backlog: the new worker accepts
      // once its loop starts, so that one whose start fails leaves them there for the next try.
      this.#addresses = await worker.start(this.#targets, this.#passable(), {
        restarting: false,
        readyTimeoutMs: this.config.ready_timeout * 1000,
        deferAccept: true,
      });
      this.restarts++;
      this.logger.log(2, `worker ${worker.pid} restarted`, { worker: worker.pid });
      // A worker replaced by a reload may still be draining: the two share broadcasts.
      this.#updatePeers();
      this.#prepareSpare();
    } catch (err) {
      worker.kill();
      if (this.state !== 'running') return;
      this.logger.log(0, `worker ${worker.pid} failed to start: ${(err as Error).message}`, {
        worker: worker.pid,
      });
      // Its exit goes through #onWorkerExit, which schedules the next try with a longer delay. A
      // reload waiting for this restart goes on only once the worker is gone: it must not take a
      // dying worker for a live one to migrate from.
      await worker.exited;
    }
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
    this.state = 'stopping';
    this.#resolveStopBegun();
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#spare?.kill();
    this.#spare = undefined;
    await this.#reloading?.catch(() => {});
    const drainMs = graceful ? (this.config?.drain_timeout ?? 0) * 1000 : 0;
    const worker = this.#worker;
    if (worker && worker.state !== 'exited') {
      this.logger.log(2, graceful ? 'stopping gracefully: draining connections' : 'stopping', {
        worker: worker.pid,
      });
      const exited = worker.stopWithin(drainMs + 10_000, graceful ? 'quit' : 'stop', drainMs);
      // The worker stops accepting at once; close our copies too, so that new connections are
      // refused instead of waiting in a backlog nobody will accept from.
      for (const key of [...this.#held.keys()]) await this.#release(key);
      await exited;
    }
    // Workers still draining after a reload: a plain stop ends them now, a graceful one lets them
    // drain for at most drain_timeout.
    await Promise.all(
      [...this.#retiring].map((w) =>
        graceful ? w.stopWithin(drainMs + 10_000, 'quit', drainMs) : w.stopWithin(10_000),
      ),
    );
    await this.#closeAll();
    this.state = 'stopped';
    this.logger?.log(2, 'netplex supervisor stopped');
    this.logger?.flush();
    this.#resolveStopped(0);
  }

  async #closeAll(): Promise<void> {
    for (const key of [...this.#held.keys()]) await this.#release(key);
    if (this.config?.pid_file) removePidFile(this.config.pid_file);
  }
}

/** resolveIds turns the user and group options into ids to fork the worker with, when running as root. */
function resolveIds(config: Readonly<ServerConfig>): { uid?: number | undefined; gid?: number | undefined } {
  if (process.getuid?.() !== 0) return {};
  return {
    uid: config.user === undefined ? undefined : lookupId('-u', config.user),
    gid: config.group === undefined ? undefined : lookupId('-g', config.group),
  };
}

function lookupId(flag: '-u' | '-g', name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  const db = flag === '-u' ? '/etc/passwd' : '/etc/group';
  for (const line of readFileSync(db, 'utf8').split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name && fields[2] !== undefined) return Number(fields[2]);
  }
  throw new SupervisorError(
    'SUP_ERR_USER',
    `${flag === '-u' ? 'user' : 'group'} ${JSON.stringify(name)} is not in ${db}`,
  );
}

/**
 * pinUdpPorts gives each udp target bound with port 0 the port its worker got (addresses are the
 * worker's listeners, in the order of the targets), so that later workers bind that same port: the
 * supervisor holds no udp socket, and a port 0 would otherwise change with every worker.
 */
function pinUdpPorts(targets: BindTarget[], addresses: readonly ListenAddress[]): BindTarget[] {
  if (addresses.length !== targets.length) return targets;
  return targets.map((t, i) => {
    const a = addresses[i]!;
    if (t.proto !== 'udp' || !('port' in t) || t.port !== 0 || a.proto !== 'udp') return t;
    return Object.freeze({ ...t, port: a.port }) as BindTarget;
  });
}
