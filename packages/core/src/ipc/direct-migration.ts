/**
 * ipc/direct-migration — the direct migration transport: connections go from the old worker to the
 * new one over a unix socket pair the supervisor made for this migration (direct-link.ts), many
 * descriptors a message, each batch acknowledged in one message; the supervisor relays no socket.
 *
 * What goes over the link, in order: the server state, batches of frozen connections (each batch's
 * descriptors with it, in the same order), the new worker's answer to each batch, and the
 * connections the old worker has let go (with what it wrote to them meanwhile). When the link closes
 * (the other worker is gone), whatever was on its way and not answered stays with the old worker.
 */
import type net from 'node:net';
import type { UnixSockets } from '@netplex/unix';
import { formatUserError } from '../error-format.js';
import { socketFd } from '../migration/socket-fd.js';
import type { MigrationChannel, MoveWindowBounds } from '../migration/types.js';
import { everyTurn } from './channel.js';
import { DirectLink } from './direct-link.js';
import type { FrozenConnection, FrozenServer, ReleasedConnection } from './messages.js';
import type { WorkerHost } from './worker-host.js';

/** How many connections one message of the link carries at most (Linux passes up to 253 descriptors). */
export const DIRECT_BATCH = 64;

/**
 * How many connections a direct migration has on their way at once: at least one batch, at most
 * DIRECT_WINDOW_MAX, as many as the new worker takes in MIGRATION_PAUSE_MS (see MoveWindow).
 */
export const DIRECT_WINDOW: MoveWindowBounds = { min: 4 * DIRECT_BATCH, max: 1024 };

/** What goes over the link. */
export type DirectMessage =
  | { t: 'state'; data: FrozenServer }
  /** A batch of connections; their descriptors come with the message, in the same order. */
  | { t: 'conns'; seq: number; conns: FrozenConnection[] }
  /** The new worker's answer to batch `seq`: the positions in it of the connections it did not take. */
  | { t: 'answer'; seq: number; failed: number[] }
  | { t: 'released'; items: ReleasedConnection[] };

function isDirectMessage(m: unknown): m is DirectMessage {
  return typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
}

/** DirectOut is the old worker's side: a MigrationChannel, and its end. */
export interface DirectOut extends MigrationChannel {
  /** finish resolves once every release is in the kernel, then closes this end. */
  finish(): Promise<void>;
}

interface Waiting {
  frozen: FrozenConnection;
  fd: number;
  answer: (ok: boolean) => void;
}

/** directOut is the old worker's side of the link on `fd`. */
export function directOut(unix: UnixSockets, fd: number, log: (message: string) => void): DirectOut {
  /** Batches sent and not answered yet, by seq: how to answer each of their connections. */
  const unanswered = new Map<number, Array<(ok: boolean) => void>>();
  const gathered: Waiting[] = [];
  let seq = 0;
  let queued = false;
  const link = new DirectLink(unix, fd, {
    message(m, fds) {
      for (const extra of fds) unix.close(extra);
      if (!isDirectMessage(m) || m.t !== 'answer') return;
      const answers = unanswered.get(m.seq);
      if (!answers) return;
      unanswered.delete(m.seq);
      const failed = new Set(m.failed);
      for (let i = 0; i < answers.length; i++) answers[i]!(!failed.has(i));
    },
    closed(reason) {
      // Whatever is on its way and not answered stays here.
      if (unanswered.size > 0 || gathered.length > 0) log(`migration link closed: ${reason}`);
      for (const answers of unanswered.values()) for (const answer of answers) answer(false);
      unanswered.clear();
      for (const w of gathered.splice(0)) w.answer(false);
    },
  });
  // The connections frozen in one turn go together, a batch a message.
  const sendGathered = () => {
    queued = false;
    while (gathered.length > 0) {
      const batch = gathered.splice(0, DIRECT_BATCH);
      const n = ++seq;
      unanswered.set(
        n,
        batch.map((w) => w.answer),
      );
      const message: DirectMessage = { t: 'conns', seq: n, conns: batch.map((w) => w.frozen) };
      if (
        !link.send(
          message,
          batch.map((w) => w.fd),
        )
      ) {
        unanswered.delete(n);
        for (const w of batch) w.answer(false);
      }
    }
  };
  const released = everyTurn<ReleasedConnection>(async (items) => {
    link.send({ t: 'released', items } satisfies DirectMessage);
  });
  return {
    window: DIRECT_WINDOW,
    // A socket with no descriptor of its own (a TLS stream over another) stays and drains.
    carries: (socket) => socketFd(socket) !== undefined,
    async state(data) {
      link.send({ t: 'state', data } satisfies DirectMessage);
    },
    conn(frozen: FrozenConnection, socket: net.Socket) {
      const sfd = socketFd(socket);
      if (link.closed || sfd === undefined) return Promise.resolve(false);
      return new Promise<boolean>((answer) => {
        gathered.push({ frozen, fd: sfd, answer });
        if (!queued) {
          queued = true;
          setImmediate(sendGathered);
        }
      });
    },
    released(id, output, end) {
      const item: ReleasedConnection = { id };
      if (output.length > 0) item.output = output.toString('base64');
      if (end !== undefined) item.end = end;
      released.push(item);
    },
    async finish() {
      await released.flush();
      await link.flushed();
      link.close();
    },
  };
}

/** DirectIn is the new worker's side. */
export interface DirectIn {
  /** end, at the migration's end, takes in what is still waiting on the link, then closes it. */
  end(): void;
}

/** directIn is the new worker's side of the link on `fd`: it serves what comes through it. */
export function directIn(unix: UnixSockets, fd: number, server: WorkerHost): DirectIn {
  let stateTaken = false;
  const logged = (what: string, p: Promise<unknown>) =>
    p.catch((err: unknown) => server.log(0, `${what} failed: ${formatUserError(err)}`));
  const take = (m: Extract<DirectMessage, { t: 'conns' }>, fds: number[]) => {
    const failed: number[] = [];
    m.conns.forEach((conn, i) => {
      const cfd = fds[i];
      // A descriptor the kernel could not pass (this process is out of them): it stays there.
      if (cfd === undefined) {
        failed.push(i);
        return;
      }
      try {
        server.adoptConnection(conn, { fd: cfd });
      } catch (err) {
        unix.close(cfd);
        server.log(1, `could not take migrated connection #${conn.id}: ${(err as Error).message}`);
        failed.push(i);
      }
    });
    for (const extra of fds.slice(m.conns.length)) unix.close(extra);
    link.send({ t: 'answer', seq: m.seq, failed } satisfies DirectMessage);
  };
  const link = new DirectLink(unix, fd, {
    message(m, fds, truncated) {
      if (!isDirectMessage(m)) {
        for (const extra of fds) unix.close(extra);
        return;
      }
      if (truncated)
        server.log(1, `a migration batch came without some of its descriptors (${fds.length} came)`);
      switch (m.t) {
        case 'state':
          stateTaken = true;
          logged('taking the server state', server.thawServer(m.data));
          return;
        case 'conns':
          take(m, fds);
          return;
        case 'released':
          for (const { id, output, end } of m.items)
            server.releaseAdopted(
              id,
              output === undefined ? Buffer.alloc(0) : Buffer.from(output, 'base64'),
              end,
            );
          return;
        default:
          for (const extra of fds) unix.close(extra);
      }
    },
    closed() {},
  });
  return {
    end() {
      link.drain();
      link.close();
      // The old worker died before it sent its counter: this worker stops waiting for it.
      if (!stateTaken) logged('taking the server state', server.thawServer(null));
    },
  };
}

/**
 * takeLinkEnd takes the end of a migration link that the supervisor passed over `control` (before it
 * sent the IPC message that says so). Should an older one still wait there (a migration this worker
 * never took part in), it is closed: the newest is this migration's.
 */
export function takeLinkEnd(unix: UnixSockets, control: number): number | undefined {
  const buffer = Buffer.allocUnsafe(64);
  let newest: number | undefined;
  for (;;) {
    const got = unix.receive(control, buffer);
    if (typeof got === 'number' || (got.bytes === 0 && got.fds.length === 0)) return newest;
    for (const fd of got.fds) {
      if (newest !== undefined) unix.close(newest);
      newest = fd;
    }
  }
}
