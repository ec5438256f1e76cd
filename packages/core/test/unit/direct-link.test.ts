/**
 * DirectLink (ipc/direct-link.ts), two ends over a real seqpacketPair() of the native module: a
 * message larger than RECORD_BYTES arrives whole, with its descriptors; MAX_FDS (253) descriptors
 * arrive with their message; a flood of sends that the socket cannot take at once waits (the
 * native send says EAGAIN) and still arrives complete and in order, flushed() resolving; the peer
 * closing its end calls `closed`. Skipped, with the reason printed, where the native module is
 * unavailable.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { loadUnix, MAX_FDS, unixUnavailable } from '@netplex/unix';
import { afterEach, describe, expect, it } from 'vitest';
import { DirectLink, type LinkEvents, RECORD_BYTES } from '../../src/ipc/direct-link.js';

const unix = loadUnix();
if (!unix)
  console.warn(
    `DirectLink tests skipped: the native unix-socket module is unavailable (${unixUnavailable()})`,
  );

/** An end of the pair with what it received. */
interface End {
  link: DirectLink;
  messages: Array<{ message: unknown; fds: number[]; truncated: boolean }>;
  closedWith: string | undefined;
  /** wait resolves once `cond` holds, checked on each event of this end; bounded. */
  wait(cond: () => boolean, what: string, ms?: number): Promise<void>;
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** pair makes two linked ends over a fresh seqpacketPair(). */
function pair(): [End, End] {
  const fds = unix!.seqpacketPair();
  if (!Array.isArray(fds)) throw new Error(`seqpacketPair failed: ${fds}`);
  const ends = fds.map((fd) => {
    const waiters = new Set<() => void>();
    const wake = () => {
      for (const w of [...waiters]) w();
    };
    const end: End = {
      link: undefined as unknown as DirectLink,
      messages: [],
      closedWith: undefined,
      wait(cond, what, ms = 10_000) {
        if (cond()) return Promise.resolve();
        return new Promise((resolve, reject) => {
          const check = () => {
            if (!cond()) return;
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          };
          const timer = setTimeout(() => {
            waiters.delete(check);
            reject(
              new Error(`timed out after ${ms} ms waiting for ${what} (${end.messages.length} messages)`),
            );
          }, ms);
          waiters.add(check);
        });
      },
    };
    const events: LinkEvents = {
      message(message, received, truncated) {
        end.messages.push({ message, fds: received, truncated });
        wake();
      },
      closed(reason) {
        end.closedWith = reason;
        wake();
      },
    };
    end.link = new DirectLink(unix!, fd, events);
    cleanups.push(() => {
      end.link.close();
      for (const m of end.messages) for (const f of m.fds) unix!.close(f);
    });
    return end;
  });
  return [ends[0]!, ends[1]!];
}

/** devNull opens /dev/null, closed after the test. */
function devNull(): number {
  const fd = openSync('/dev/null', 'r');
  cleanups.push(() => closeSync(fd));
  return fd;
}

describe.skipIf(!unix)('DirectLink over a socket pair', () => {
  it('delivers a message larger than RECORD_BYTES whole, its descriptors with it', async () => {
    const [a, b] = pair();
    const text = Array.from({ length: 3 * RECORD_BYTES + 17 }, (_, i) =>
      String.fromCharCode(97 + (i % 26)),
    ).join('');
    const fd = devNull();
    expect(a.link.send({ t: 'big', text }, [fd, fd])).toBe(true);
    await b.wait(() => b.messages.length === 1, 'the large message');
    const got = b.messages[0]!;
    expect((got.message as { text: string }).text.length).toBe(text.length);
    expect(got.message).toEqual({ t: 'big', text });
    expect(got.truncated).toBe(false);
    expect(got.fds).toHaveLength(2);
    const ino = fstatSync(fd).ino;
    for (const f of got.fds) expect(fstatSync(f).ino, 'a copy of /dev/null').toBe(ino);
    await a.link.flushed();
  });

  it(`delivers ${MAX_FDS} descriptors with their message`, async () => {
    const [a, b] = pair();
    const fd = devNull();
    const fds = Array.from({ length: MAX_FDS }, () => fd);
    expect(a.link.send({ t: 'many', n: MAX_FDS }, fds)).toBe(true);
    await b.wait(() => b.messages.length === 1, `the message with ${MAX_FDS} descriptors`);
    const got = b.messages[0]!;
    expect(got.message).toEqual({ t: 'many', n: MAX_FDS });
    expect(got.truncated).toBe(false);
    expect(got.fds).toHaveLength(MAX_FDS);
    expect(new Set(got.fds).size, 'each copy is its own descriptor').toBe(MAX_FDS);
    const ino = fstatSync(fd).ino;
    for (const f of got.fds) expect(fstatSync(f).ino).toBe(ino);
  });

  it('queues a flood the socket cannot take at once (EAGAIN) and delivers it complete and in order', async () => {
    const [a, b] = pair();
    const N = 2000;
    const pad = 'x'.repeat(4000);
    const fd = devNull();
    for (let i = 0; i < N; i++) expect(a.link.send({ i, pad }, i % 100 === 0 ? [fd] : [])).toBe(true);
    // 8 MB does not fit in the socket's buffer: some records wait for it to be writable.
    let flushed = false;
    const done = a.link.flushed().then(() => {
      flushed = true;
    });
    await Promise.resolve();
    expect(flushed, 'the sends waited for the socket (EAGAIN)').toBe(false);
    await b.wait(() => b.messages.length === N, `all ${N} messages`, 20_000);
    await done;
    expect(flushed).toBe(true);
    expect(b.messages.map((m) => (m.message as { i: number }).i)).toEqual(
      Array.from({ length: N }, (_, i) => i),
    );
    expect(b.messages.every((m) => (m.message as { pad: string }).pad === pad)).toBe(true);
    expect(b.messages.filter((m) => m.fds.length === 1).map((m) => (m.message as { i: number }).i)).toEqual(
      Array.from({ length: N / 100 }, (_, k) => k * 100),
    );
    expect(a.closedWith).toBeUndefined();
    expect(b.closedWith).toBeUndefined();
  });

  it('calls closed when the peer closes its end, and refuses to send afterwards', async () => {
    const [a, b] = pair();
    a.link.send({ t: 'last words' });
    a.link.close('done here');
    expect(a.closedWith).toBe('done here');
    await b.wait(() => b.closedWith !== undefined, 'the other end to see the close');
    expect(b.messages.map((m) => m.message)).toEqual([{ t: 'last words' }]);
    expect(b.closedWith).toBe('the other worker closed its end');
    expect(b.link.closed).toBe(true);
    expect(b.link.send({ t: 'too late' })).toBe(false);
    await b.link.flushed();
  });
});
