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
import { type Client, clientControl } from '../connection/client.js';
import { formatUserError } from '../error-format.js';
import { socketFd } from '../migration/socket-fd.js';
import type { MigrationChannel, MoveWindowBounds } from '../migration/types.js';
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
  /**
   * Output written in the old worker to connections on their way, and how it ended them: `last`
   * when the old worker has let them go (it had the answer), else more may follow.
   */
  | { t: 'output'; items: ReleasedConnection[]; last: boolean };

function isDirectMessage(m: unknown): m is DirectMessage {
  return typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
}

/** DirectOut is the old worker's side: a MigrationChannel, and its end. */
export interface DirectOut extends MigrationChannel {
  /** finish resolves once everything sent is in the kernel, then closes this end. */
  finish(): Promise<void>;
  /** lost is true once the link was closed from the other end (the new worker is gone) or failed. */
  readonly lost: boolean;
}

/** One connection given to conn(): gathered for the next batch, then on its way until answered. */
interface Moving {
  frozen: FrozenConnection;
  fd: number;
  client: Client<unknown>;
  answer: (ok: boolean) => void;
  /** Output written to it while on its way and sent on ahead, in order (put back if it stays). */
  sentAhead: Buffer[];
}

/**
 * directOut is the old worker's side of the link on `fd`.
 *
 * Order is what makes the new worker's output safe to send at once, without waiting for this worker
 * to let a connection go: once a turn of this worker's loop, output written meanwhile to connections
 * on their way goes first, then the connections frozen in that turn (each with what was written to
 * it since it was frozen). A connection's output written here before another connection moved thus
 * reaches the new worker before that connection does, and so before anything it makes the new worker
 * write.
 */
export function directOut(unix: UnixSockets, fd: number, log: (message: string) => void): DirectOut {
  /** Batches sent and not answered yet, by seq. */
  const unanswered = new Map<number, Moving[]>();
  const gathered: Moving[] = [];
  /** Connections let go (answered), whose last output and end go with the next turn's messages. */
  let letGo: ReleasedConnection[] = [];
  let seq = 0;
  let queued = false;
  let finishing = false;
  let lost = false;
  const stays = (m: Moving) => {
    // What was sent on ahead did not arrive anywhere: it goes out here, before what is held.
    for (let i = m.sentAhead.length - 1; i >= 0; i--) clientControl.restoreHeld(m.client, m.sentAhead[i]!);
    m.answer(false);
  };
  const link = new DirectLink(unix, fd, {
    message(m, fds) {
      for (const extra of fds) unix.close(extra);
      if (!isDirectMessage(m) || m.t !== 'answer') return;
      const batch = unanswered.get(m.seq);
      if (!batch) return;
      unanswered.delete(m.seq);
      const failed = new Set(m.failed);
      for (let i = 0; i < batch.length; i++) {
        if (failed.has(i)) stays(batch[i]!);
        else batch[i]!.answer(true);
      }
    },
    closed(reason) {
      if (!finishing) lost = true;
      // Whatever is on its way and not answered stays here.
      if (unanswered.size > 0 || gathered.length > 0) log(`migration link closed: ${reason}`);
      for (const batch of unanswered.values()) for (const m of batch) stays(m);
      unanswered.clear();
      for (const m of gathered.splice(0)) stays(m);
    },
  });
  const output = (out: Buffer): string | undefined => (out.length > 0 ? out.toString('base64') : undefined);
  /** The turn's messages: output to connections on their way, then the connections frozen. */
  const sendTurn = () => {
    queued = false;
    if (link.closed) return;
    const ahead: ReleasedConnection[] = [];
    for (const batch of unanswered.values())
      for (const m of batch) {
        const out = clientControl.takeHeldOutput(m.client);
        if (out.length === 0) continue;
        m.sentAhead.push(out);
        ahead.push({ id: m.frozen.id, output: out.toString('base64') });
      }
    if (ahead.length > 0) link.send({ t: 'output', items: ahead, last: false } satisfies DirectMessage);
    if (letGo.length > 0) {
      link.send({ t: 'output', items: letGo, last: true } satisfies DirectMessage);
      letGo = [];
    }
    while (gathered.length > 0) {
      const batch = gathered.splice(0, DIRECT_BATCH);
      for (const m of batch) {
        // Written since it was frozen: it goes with it (and is put back with the rest if it stays).
        const more = clientControl.takeHeldOutput(m.client);
        if (more.length > 0) {
          const before = m.frozen.output === undefined ? [] : [Buffer.from(m.frozen.output, 'base64')];
          m.frozen.output = output(Buffer.concat([...before, more]));
        }
      }
      const n = ++seq;
      unanswered.set(n, batch);
      const message: DirectMessage = { t: 'conns', seq: n, conns: batch.map((m) => m.frozen) };
      if (
        !link.send(
          message,
          batch.map((m) => m.fd),
        )
      ) {
        unanswered.delete(n);
        for (const m of batch) stays(m);
      }
    }
  };
  const nextTurn = () => {
    if (queued) return;
    queued = true;
    setImmediate(sendTurn);
  };
  return {
    window: DIRECT_WINDOW,
    // A socket with no descriptor of its own (a TLS stream over another) stays and drains.
    carries: (socket) => socketFd(socket) !== undefined,
    async state(data) {
      link.send({ t: 'state', data } satisfies DirectMessage);
    },
    conn(frozen: FrozenConnection, socket: net.Socket, client: Client<unknown>) {
      const sfd = socketFd(socket);
      if (link.closed || sfd === undefined) return Promise.resolve(false);
      return new Promise<boolean>((answer) => {
        gathered.push({ frozen, fd: sfd, client, answer, sentAhead: [] });
        nextTurn();
      });
    },
    released(id, out, end, timeoutMs) {
      const item: ReleasedConnection = { id };
      const data = output(out);
      if (data !== undefined) item.output = data;
      if (end !== undefined) item.end = end;
      if (timeoutMs !== undefined) item.timeoutMs = timeoutMs;
      letGo.push(item);
      nextTurn();
    },
    get lost() {
      return lost;
    },
    async finish() {
      if (queued) sendTurn();
      await link.flushed();
      finishing = true;
      link.close();
    },
  };
}

/** DirectIn is the new worker's side. */
export interface DirectIn {
  /** end, at the migration's end, takes in what is still waiting on the link, then closes it. */
  end(): void;
}

/**
 * directIn is the new worker's side of the link on `fd`: it serves what comes through it. What it
 * writes to a connection that came this way goes out at once (see directOut for why that is safe).
 */
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
        server.adoptConnection(conn, { fd: cfd }, false);
      } catch (err) {
        unix.close(cfd);
        server.log(1, `could not take migrated connection #${conn.id}: ${(err as Error).message}`);
        failed.push(i);
      }
    });
    for (const extra of fds.slice(m.conns.length)) unix.close(extra);
    // Answered at the end of this turn, once muxThaw has run (or begun): should it take this worker
    // down, the connections are still the old worker's.
    setImmediate(() => link.send({ t: 'answer', seq: m.seq, failed } satisfies DirectMessage));
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
        case 'output':
          for (const { id, output, end, timeoutMs } of m.items)
            server.deliverToAdopted(
              id,
              output === undefined ? Buffer.alloc(0) : Buffer.from(output, 'base64'),
              end,
              m.last,
              timeoutMs,
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
