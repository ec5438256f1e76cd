/**
 * connection/shutdown — which side of a connection `mux.shutdown` shuts, read from Perl's 0, 1, 2
 * or their names.
 */

/** ShutdownHow is which side `mux.shutdown` shuts: Perl's 0, 1, 2 or their names. */
export type ShutdownHow = 0 | 1 | 2 | 'read' | 'write' | 'both';

/** shutdownSides reads a ShutdownHow; a bad one throws, naming what is accepted. */
export function shutdownSides(how: ShutdownHow): { read: boolean; write: boolean } {
  switch (how) {
    case 0:
    case 'read':
      return { read: true, write: false };
    case 1:
    case 'write':
      return { read: false, write: true };
    case 2:
    case 'both':
      return { read: true, write: true };
    default:
      throw new RangeError(`shutdown() takes 0, 1, 2, 'read', 'write' or 'both', got ${String(how)}`);
  }
}
