/**
 * worker — a server running under the supervisor: it receives the bind targets and listen handles
 * over IPC, runs the process flow with them, reports ready, and retires or stops on request.
 *
 * Handles arrive one message each and are acknowledged one by one. The worker never binds a port the
 * supervisor holds; it only adopts the handle (udp targets, which are not passed, it binds itself).
 */
import { formatUserError } from './error-format.js';
import {
  isNetplexMessage,
  type PeerBroadcastMessage,
  type ReleasedConnection,
  type SupervisorMessage,
  type WorkerMessage,
} from './ipc.js';
import type { AnyMultiplexServer, PeerBroadcast } from './multiplex-server.js';
import type { BindTarget } from './port-spec.js';

function send(message: WorkerMessage, handle?: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.connected || !process.send) resolve();
    else process.send(message, handle as never, {}, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * everyTurn gathers items and sends them as one batch per event-loop turn (`send` gets each batch);
 * `flush` sends what is gathered now and resolves once every batch is out.
 */
function everyTurn<T>(send: (items: T[]) => Promise<void>) {
  let items: T[] = [];
  let last: Promise<void> = Promise.resolve();
  let queued = false;
  const flush = (): Promise<void> => {
    queued = false;
    if (items.length > 0) {
      const batch = items;
      items = [];
      last = send(batch).catch(() => {});
    }
    return last;
  };
  return {
    push(item: T): void {
      items.push(item);
      if (!queued) {
        queued = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}

/** runWorker serves `server` under the supervisor until it is retired, stopped or orphaned. */
export function runWorker(server: AnyMultiplexServer, runArgs: Record<string, unknown>): Promise<void> {
  return new Promise<void>((resolve) => {
    let start: Extract<SupervisorMessage, { type: 'netplex:start' }> | undefined;
    const handles = new Map<string, unknown>();
    let started = false;
    let leaving = false;
    /** Acknowledgements awaited for connections sent during a migration out, by seq. */
    const acks = new Map<number, (ok: boolean) => void>();
    let migrationSeq = 0;
    /** Connections taken in (or not) during a migration in, acknowledged a batch per event-loop turn. */
    const acksOut = everyTurn<{ seq: number; ok: boolean }>((items) =>
      send({
        type: 'netplex:conn-ack',
        ok: items.filter((a) => a.ok).map((a) => a.seq),
        failed: items.filter((a) => !a.ok).map((a) => a.seq),
      }),
    );
    const ack = (seq: number, ok: boolean) => acksOut.push({ seq, ok });

    // Exit for real once the last message is out: a user's timer or socket must not keep a
    // retired worker alive (the supervisor would wait for its exit).
    const exit = (code: number, last?: Promise<void>) => {
      process.off('message', onMessage);
      process.off('disconnect', onDisconnect);
      void (last ?? Promise.resolve()).then(() => {
        server.logger?.flush();
        resolve();
        process.exit(code);
      });
    };

    /** logged runs an IPC handler's promise to its end: a failure is logged, never left unhandled. */
    const logged = (what: string, p: Promise<unknown>): void => {
      p.catch((err: unknown) => server.log(0, `${what} failed: ${formatUserError(err)}`));
    };

    const leave = async (how: () => Promise<void>) => {
      if (leaving) return;
      leaving = true;
      try {
        await how();
      } catch (err) {
        server.log(0, `shutdown failed: ${formatUserError(err)}`);
      }
      exit(0);
    };

    // While another worker has clients too (a migration, a drain): a broadcast made here reaches them.
    const peerBroadcast: PeerBroadcast = (data, skip) => {
      const message: PeerBroadcastMessage = { type: 'netplex:broadcast', data: data.toString('base64') };
      if (skip.length > 0) message.skip = skip;
      void send(message).catch(() => {});
    };

    const begin = async (msg: NonNullable<typeof start>) => {
      started = true;
      // Taking connections in from the worker this one replaces, which keeps serving the others
      // meanwhile: until the supervisor says otherwise (netplex:peers).
      if (msg.migrate) server.setPeerBroadcast(peerBroadcast);
      // Each start-up hook is reported as it begins and ends: when ready_timeout runs out, the
      // supervisor names the one that never settled.
      server.observeHooks((hook) => void send({ type: 'netplex:hook', hook: hook ?? null }).catch(() => {}));
      try {
        await server.start({
          argv: process.argv.slice(2),
          run: runArgs,
          targets: msg.targets as BindTarget[],
          handles,
          restarting: msg.restarting,
          migrating: msg.migrate ?? false,
          deferAccept: msg.deferAccept ?? false,
        });
      } catch (err) {
        server.observeHooks(undefined);
        const e = err as Error & { code?: string };
        exit(
          1,
          send({ type: 'netplex:fatal', message: formatUserError(e), ...(e.code ? { code: e.code } : {}) }),
        );
        return;
      }
      server.observeHooks(undefined);
      void send({ type: 'netplex:ready', addresses: server.addresses() }).catch(() => {});
      void server.done.then(() => {
        if (leaving) return;
        // The server ended its loop by itself: endloop() stops the whole server, as in Perl.
        leaving = true;
        exit(0, send({ type: 'netplex:endloop' }));
      });
    };

    const onMessage = (msg: unknown, handle?: unknown) => {
      if (!isNetplexMessage(msg)) return;
      const m = msg as SupervisorMessage;
      switch (m.type) {
        case 'netplex:start':
          start = m;
          break;
        case 'netplex:handle':
          handles.set(m.key, handle);
          void send({ type: 'netplex:ack', ack: m.seq }).catch(() => {});
          break;
        case 'netplex:retire':
          void leave(() => server.retire(m.drainTimeoutMs));
          return;
        case 'netplex:quit':
          void leave(() => server.retire(m.drainTimeoutMs, { restart: false }));
          return;
        case 'netplex:stop':
          // While retiring, close() cuts the drain short; the retire in progress then exits.
          if (leaving) logged('close', server.close());
          else void leave(() => server.close());
          return;
        case 'netplex:status':
          void send({ type: 'netplex:status', ack: m.seq, ...server.status() }).catch(() => {});
          return;
        case 'netplex:reopen-logs':
          server.logger?.reopen();
          return;
        // The worker being replaced, migrating its connections out.
        case 'netplex:migrate':
          // The supervisor sends this only to a worker that is serving; should the worker be unable
          // to move anything (it is already closing), it says so, and what it has drains.
          migrateOut().catch((err: unknown) => {
            server.log(0, `could not migrate connections out: ${formatUserError(err)}`);
            const counts = { migrated: 0, drained: server.status().connections, failed: 0, ms: 0 };
            logged('migration report', send({ type: 'netplex:migrated', ...counts }));
          });
          return;
        case 'netplex:conn-ack':
          for (const seq of m.ok) {
            acks.get(seq)?.(true);
            acks.delete(seq);
          }
          for (const seq of m.failed) {
            acks.get(seq)?.(false);
            acks.delete(seq);
          }
          return;
        case 'netplex:resume':
          // The new worker failed: accept again on the handles the supervisor just sent.
          logged('accepting again', server.resumeAccepting(handles));
          return;
        // The new worker, taking them in.
        case 'netplex:server-state':
          logged('taking the server state', server.thawServer(m.data));
          return;
        case 'netplex:conn':
          try {
            server.adoptConnection(m.conn, handle);
            ack(m.seq, true);
          } catch (err) {
            // The old worker keeps the connection; this copy of the descriptor goes.
            (handle as { close?: () => void } | undefined)?.close?.();
            server.log(1, `could not take migrated connection #${m.conn.id}: ${(err as Error).message}`);
            ack(m.seq, false);
          }
          return;
        case 'netplex:released':
          for (const { id, output, end } of m.items)
            server.releaseAdopted(
              id,
              output === undefined ? Buffer.alloc(0) : Buffer.from(output, 'base64'),
              end,
            );
          return;
        case 'netplex:migration-end':
          server.endAdoption();
          return;
        case 'netplex:peers':
          server.setPeerBroadcast(m.on ? peerBroadcast : undefined);
          return;
        case 'netplex:broadcast':
          server.receiveBroadcast(Buffer.from(m.data, 'base64'), m.skip ?? []);
          return;
        default:
          return;
      }
      if (start && !started && start.handleKeys.every((k) => handles.has(k))) logged('start', begin(start));
    };

    // Moving out: the state, then each connection with its handle, each acknowledged (in batches) once
    // the new worker has it. The supervisor then says whether to retire (drain what stayed) or, if
    // the new worker failed, resume.
    const migrateOut = async () => {
      // Released connections go a batch per event-loop turn, as the acknowledgements come.
      const released = everyTurn<ReleasedConnection>((items) => send({ type: 'netplex:released', items }));
      server.setPeerBroadcast(peerBroadcast);
      const counts = await server.migrateOut({
        state: (data) => send({ type: 'netplex:server-state', data }),
        conn: (conn, h) => {
          const seq = ++migrationSeq;
          const acked = new Promise<boolean>((res) => acks.set(seq, res));
          return send({ type: 'netplex:conn', seq, conn }, h).then(
            () => acked,
            () => {
              acks.delete(seq);
              return false;
            },
          );
        },
        released: (id, data, end) => {
          const item: ReleasedConnection = { id };
          if (data.length > 0) item.output = data.toString('base64');
          if (end !== undefined) item.end = end;
          released.push(item);
        },
      });
      // Every release is out before the migration's end, which releases whatever is still held.
      await released.flush();
      await send({ type: 'netplex:migrated', ...counts });
    };

    // The supervisor is gone (even SIGKILL closes the channel): stop accepting, close, exit. No orphans.
    const onDisconnect = () => {
      void leave(() => server.close());
    };

    // A signal meant for the whole group (systemd's KillMode=control-group) stops this worker in
    // order; the supervisor, which gets it too, waits for that.
    const onSignal = () => {
      if (leaving) logged('close', server.close());
      else void leave(() => server.close());
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    // SIGQUIT to the whole group: stop accepting and drain, as the supervisor's QUIT asks.
    process.on('SIGQUIT', () => {
      void leave(() => server.retire((server.config?.drain_timeout ?? 0) * 1000, { restart: false }));
    });

    process.on('message', onMessage);
    process.on('disconnect', onDisconnect);
    void send({ type: 'netplex:hello' }).catch(() => {});
  });
}
