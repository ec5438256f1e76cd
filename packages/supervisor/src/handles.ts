/**
 * handles — listen sockets the supervisor binds and holds without ever accepting on them.
 *
 * This wraps one Node internal: `net._createServerHandle`, the call Node's own cluster module uses
 * to bind a socket in the primary for its workers. The handle is bound but not listening here; the
 * worker that receives it (`child.send(msg, handle)`) calls `server.listen(handle)`, which puts the
 * shared socket into the listening state. The supervisor keeps its copy open for its whole life,
 * so when a worker dies the socket stays listening and new connections wait in the kernel's backlog
 * for the next worker instead of being refused. test/unit/handles.test.ts fails loudly if a Node
 * upgrade breaks any of this.
 */
import net from 'node:net';
import { constants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import { BindError, type BindTarget, describeBindError, formatBindTarget } from '@netplex/core';

/** ListenHandle is a bound TCP or pipe handle (libuv's, as Node's internals make it). */
export interface ListenHandle {
  close(cb?: () => void): void;
  getsockname?(out: Record<string, unknown>): number;
}

interface NetInternals {
  _createServerHandle(
    address: string | null,
    port: number,
    addressType: number,
    fd?: number,
    flags?: number,
  ): ListenHandle | number;
}

const UV_TCP_IPV6ONLY = 1;

/** isPassable tells whether a target's socket is bound by the supervisor and passed (tcp, unix streams). */
export function isPassable(target: BindTarget): boolean {
  return target.proto === 'tcp' || target.proto === 'unix';
}

/** createListenHandle binds a tcp or unix target; it throws a BindError naming the target and the reason. */
export function createListenHandle(target: BindTarget): ListenHandle {
  const internals = net as unknown as NetInternals;
  if (typeof internals._createServerHandle !== 'function') {
    throw new BindError(
      formatBindTarget(target),
      'this Node.js has no net._createServerHandle; netplex needs Node 20 or 22',
    );
  }
  let result: ListenHandle | number;
  if ('path' in target) {
    result = internals._createServerHandle(target.path, -1, -1);
  } else {
    const flags = target.family === 6 && target.ipv6Only ? UV_TCP_IPV6ONLY : 0;
    result = internals._createServerHandle(target.address, target.port, target.family, undefined, flags);
  }
  // libuv defers EADDRINUSE from bind() to listen() (delayed_error), and the worker that would call
  // listen() gets only the fd, whose socket would then quietly listen on a random port. A socket
  // that bind() left unbound has port 0: report it here, as the error it is.
  if (typeof result !== 'number' && !('path' in target) && !handlePort(result)) {
    result.close();
    result = -constants.errno.EADDRINUSE;
  }
  if (typeof result === 'number') {
    const name = getSystemErrorName(result);
    throw new BindError(formatBindTarget(target), describeBindError(name, name));
  }
  return result;
}

/** handlePort is the port a tcp handle is bound to (the real one when the target asked for 0). */
export function handlePort(handle: ListenHandle): number | undefined {
  const out: Record<string, unknown> = {};
  if (handle.getsockname?.(out) !== 0) return undefined;
  return typeof out.port === 'number' ? out.port : undefined;
}

/** closeHandle closes a handle the supervisor holds. */
export function closeHandle(handle: ListenHandle): Promise<void> {
  return new Promise((resolve) => handle.close(() => resolve()));
}
