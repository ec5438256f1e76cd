/**
 * migration/socket-fd — the descriptor of a connected socket, which the direct migration transport
 * passes to the new worker (SCM_RIGHTS).
 *
 * This reads one Node internal: the `fd` of a socket's libuv handle (`socket._handle.fd`, a TCP or
 * Pipe wrap), which Node itself uses to pass handles over IPC. The receiving side needs nothing
 * internal: `new net.Socket({ fd })` is public. test/unit/socket-fd.test.ts fails loudly if a Node
 * upgrade breaks this.
 */
import type net from 'node:net';

interface HandleWithFd {
  fd?: unknown;
}

/** socketFd gives the descriptor under `socket`, or undefined when it has none (closed, TLS, not a stream). */
export function socketFd(socket: net.Socket): number | undefined {
  const handle = (socket as unknown as { _handle?: HandleWithFd | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : undefined;
}
