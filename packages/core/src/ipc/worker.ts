/**
 * ipc/worker — a server running under the supervisor: it receives the bind targets and listen
 * handles over IPC, runs the process flow with them, reports ready, and retires or stops on request.
 *
 * Handles arrive one message each and are acknowledged one by one. The worker never binds a port the
 * supervisor holds; it only adopts the handle (udp targets, which are not passed, it binds itself).
 * Every message the supervisor sends has its handler in one table (`handlers` below).
 */
import { loadUnix } from '@netplex/unix';
import { formatUserError } from '../error-format.js';
import type { BindTarget } from '../port-spec.js';
import { noteServing } from '../runtime-loader.js';
import { Channel, everyTurn, type Handlers, Pending } from './channel.js';
import { type DirectIn, directIn, directOut, takeLinkEnd } from './direct-migration.js';
import { linkFdEnv } from './globals.js';
import {
  isSupervisorMessage,
  type MessageOf,
  type PeerBroadcastMessage,
  protocolVersion,
  type ReleasedConnection,
  type SupervisorMessage,
  type WorkerMessage,
} from './messages.js';
import type { WorkerHost } from './worker-host.js';

/** How long after netplex:ready the worker writes the served code cache (see runtime-loader.ts). */
const SERVED_CACHE_DELAY_MS = 1000;

type StartMessage = MessageOf<SupervisorMessage, 'netplex:start'>;

/** runWorker serves `server` under the supervisor until it is retired, stopped or orphaned. */
export function runWorker(server: WorkerHost, runArgs: Record<string, unknown>): Promise<void> {
  return new Promise<void>((resolve) => {
    const channel = new Channel<WorkerMessage, SupervisorMessage>(process, {
      gone: () => new Error('the supervisor is gone'),
    });
    const post = (message: WorkerMessage) => channel.post(message);
    let start: StartMessage | undefined;
    const handles = new Map<string, unknown>();
    let started = false;
    let leaving = false;
    /** Acknowledgements awaited for connections sent during a migration out, by seq. */
    const handedOver = new Pending<boolean>();
    /** Connections taken in (or not) during a migration in, acknowledged a batch per event-loop turn. */
    const acksOut = everyTurn<{ seq: number; ok: boolean }>((items) =>
      channel.send({
        type: 'netplex:conn-ack',
        ok: items.filter((a) => a.ok).map((a) => a.seq),
        failed: items.filter((a) => !a.ok).map((a) => a.seq),
      }),
    );
    const ack = (seq: number, ok: boolean) => acksOut.push({ seq, ok });
    // The direct migration transport: the native module, and the socket over which the supervisor
    // hands this worker its end of each migration's link.
    const unix = loadUnix();
    const control = Number(process.env[linkFdEnv] ?? Number.NaN);
    const canLink = unix !== undefined && Number.isInteger(control) && control >= 0;
    /** The link this worker takes connections in through, during a direct migration in. */
    let inbound: DirectIn | undefined;

    // Exit for real once the last message is out: a user's timer or socket must not keep a
    // retired worker alive (the supervisor would wait for its exit).
    const exit = (code: number, last?: Promise<void>) => {
      channel.unlisten();
      process.off('disconnect', onDisconnect);
      void (last ?? Promise.resolve())
        .catch(() => {})
        .then(() => {
          server.flushLog();
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

    /** stop closes now; while retiring, it cuts the drain short and the retire in progress exits. */
    const stop = () => {
      if (leaving) logged('close', server.close());
      else void leave(() => server.close());
    };

    // While another worker has clients too (a migration, a drain): a broadcast made here reaches them.
    const peerBroadcast = (data: Buffer, skip: number[]) => {
      const message: PeerBroadcastMessage = { type: 'netplex:broadcast', data: data.toString('base64') };
      if (skip.length > 0) message.skip = skip;
      post(message);
    };

    const begin = async (msg: StartMessage) => {
      started = true;
      // Taking connections in from the worker this one replaces, which keeps serving the others
      // meanwhile: until the supervisor says otherwise (netplex:peers).
      if (msg.migrate) server.setPeerBroadcast(peerBroadcast);
      // Each start-up hook is reported as it begins and ends: when ready_timeout runs out, the
      // supervisor names the one that never settled.
      server.observeHooks((hook) => post({ type: 'netplex:hook', hook: hook ?? null }));
      try {
        await server.start({
          argv: process.argv.slice(2),
          run: runArgs,
          targets: msg.targets as BindTarget[],
          handles,
          restarting: msg.restarting,
          migrating: msg.migrate ?? false,
          deferAccept: msg.deferAccept ?? false,
          confText: msg.confText,
        });
      } catch (err) {
        server.observeHooks(undefined);
        const e = err as Error & { code?: string };
        const fatal: WorkerMessage = { type: 'netplex:fatal', message: formatUserError(e) };
        if (e.code) fatal.code = e.code;
        exit(1, channel.send(fatal));
        return;
      }
      server.observeHooks(undefined);
      post({ type: 'netplex:ready', addresses: server.addresses() });
      // Once the first connections have been served, the code cache takes in what serving compiled.
      setTimeout(noteServing, SERVED_CACHE_DELAY_MS).unref();
      void server.done.then(() => {
        if (leaving) return;
        // The server ended its loop by itself: endloop() stops the whole server, as in Perl.
        leaving = true;
        exit(0, channel.send({ type: 'netplex:endloop' }));
      });
    };

    /** beginWhenReady starts the server once the start message and every handle it names are here. */
    const beginWhenReady = () => {
      if (start && !started && start.handleKeys.every((k) => handles.has(k))) logged('start', begin(start));
    };

    // Moving out: the state, then each connection with its handle, each acknowledged (in batches) once
    // the new worker has it. The supervisor then says whether to retire (drain what stayed) or, if
    // the new worker failed, resume.
    const migrateOut = async (direct: boolean) => {
      server.setPeerBroadcast(peerBroadcast);
      const linkFd = direct && unix ? takeLinkEnd(unix, control) : undefined;
      if (unix && linkFd !== undefined) {
        const out = directOut(unix, linkFd, (line) => server.log(1, line));
        const counts = await server.migrateOut(out);
        await out.finish();
        await channel.send({ type: 'netplex:migrated', ...counts, ...(out.lost ? { lost: true } : {}) });
        return;
      }
      if (direct) server.log(1, 'no direct migration link came: connections go through the supervisor');
      // Released connections go a batch per event-loop turn, as the acknowledgements come.
      const released = everyTurn<ReleasedConnection>((items) =>
        channel.send({ type: 'netplex:released', items }),
      );
      const counts = await server.migrateOut({
        state: (data) => channel.send({ type: 'netplex:server-state', data }),
        conn: (conn, socket) => {
          const { seq, answer } = handedOver.open();
          const h = (socket as unknown as { _handle: unknown })._handle;
          return channel.send({ type: 'netplex:conn', seq, conn }, h).then(
            () => answer,
            () => {
              handedOver.settle(seq, false);
              return false;
            },
          );
        },
        released: (id, data, end, timeoutMs) => {
          const item: ReleasedConnection = { id };
          if (data.length > 0) item.output = data.toString('base64');
          if (end !== undefined) item.end = end;
          if (timeoutMs !== undefined) item.timeoutMs = timeoutMs;
          released.push(item);
        },
      });
      // Every release is out before the migration's end, which releases whatever is still held.
      await released.flush();
      await channel.send({ type: 'netplex:migrated', ...counts });
    };

    const handlers: Handlers<SupervisorMessage> = {
      'netplex:start': (m) => {
        start = m;
        beginWhenReady();
      },
      'netplex:handle': (m, handle) => {
        handles.set(m.key, handle);
        post({ type: 'netplex:ack', ack: m.seq });
        beginWhenReady();
      },
      'netplex:retire': (m) => {
        const { seq } = m;
        const stopped = seq === undefined ? undefined : () => post({ type: 'netplex:ack', ack: seq });
        void leave(() => server.retire(m.drainTimeoutMs, true, stopped));
      },
      'netplex:quit': (m) => void leave(() => server.retire(m.drainTimeoutMs, false)),
      'netplex:stop': stop,
      'netplex:status': (m) => post({ type: 'netplex:status', ack: m.seq, ...server.status() }),
      'netplex:reopen-logs': () => server.reopenLogs(),
      // Only a spare waits for this (worker-main.ts, before any server exists): a server has its entry.
      'netplex:load': () => {},
      // The worker being replaced, migrating its connections out.
      'netplex:migrate': (m) => {
        // The supervisor sends this only to a worker that is serving; should the worker be unable
        // to move anything (it is already closing), it says so, and what it has drains.
        migrateOut(m.transport === 'direct').catch((err: unknown) => {
          server.log(0, `could not migrate connections out: ${formatUserError(err)}`);
          const counts = { migrated: 0, drained: server.status().connections, failed: 0, ms: 0 };
          logged('migration report', channel.send({ type: 'netplex:migrated', ...counts }));
        });
      },
      'netplex:conn-ack': (m) => {
        for (const seq of m.ok) handedOver.settle(seq, true);
        for (const seq of m.failed) handedOver.settle(seq, false);
      },
      // The new worker failed: accept again on the handles the supervisor just sent.
      'netplex:resume': () => logged('accepting again', server.resumeAccepting(handles)),
      // The new worker, taking them in.
      'netplex:server-state': (m) => logged('taking the server state', server.thawServer(m.data)),
      'netplex:conn': (m, handle) => {
        try {
          server.adoptConnection(m.conn, { handle });
          ack(m.seq, true);
        } catch (err) {
          // The old worker keeps the connection; this copy of the descriptor goes.
          (handle as { close?: () => void } | undefined)?.close?.();
          server.log(1, `could not take migrated connection #${m.conn.id}: ${(err as Error).message}`);
          ack(m.seq, false);
        }
      },
      'netplex:released': (m) => {
        for (const { id, output, end, timeoutMs } of m.items)
          server.releaseAdopted(
            id,
            output === undefined ? Buffer.alloc(0) : Buffer.from(output, 'base64'),
            end,
            timeoutMs,
          );
      },
      'netplex:link': () => {
        const fd = unix ? takeLinkEnd(unix, control) : undefined;
        if (unix && fd !== undefined) inbound = directIn(unix, fd, server);
        else server.log(1, 'the supervisor said a migration link was there, and none was');
      },
      // What still waits on the link comes in first: a release there must not find it let go.
      'netplex:migration-end': () => {
        inbound?.end();
        inbound = undefined;
        server.endAdoption();
      },
      'netplex:peers': (m) => server.setPeerBroadcast(m.on ? peerBroadcast : undefined),
      'netplex:broadcast': (m) => server.receiveBroadcast(Buffer.from(m.data, 'base64'), m.skip ?? []),
    };

    // The supervisor is gone (even SIGKILL closes the channel): stop accepting, close, exit. No orphans.
    const onDisconnect = () => {
      void leave(() => server.close());
    };

    // A signal meant for the whole group (systemd's KillMode=control-group) stops this worker in
    // order; the supervisor, which gets it too, waits for that.
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    // SIGQUIT to the whole group: stop accepting and drain, as the supervisor's QUIT asks.
    process.on('SIGQUIT', () => void leave(() => server.retire(server.drainMs(), false)));

    channel.listen(isSupervisorMessage, handlers, (type) =>
      server.log(1, `ignored a message of a type this worker does not know: ${type}`),
    );
    process.on('disconnect', onDisconnect);
    post({ type: 'netplex:hello', protocol: protocolVersion, ...(canLink ? { direct: true } : {}) });
  });
}
