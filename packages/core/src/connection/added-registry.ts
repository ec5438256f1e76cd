/**
 * connection/added-registry — for a handle added with mux.add that is no stream socket (a child
 * process, a UDP socket): the object the server added, which mux.remove hands back, and how to stop
 * hearing it.
 */
import type { Client } from './client.js';

/** AddedExtra is what mux.remove needs of a handle that is no stream socket. */
export interface AddedExtra {
  /** What the server added, and gets back. */
  readonly handle: object;
  /** detach stops netplex hearing the handle, and gives back the input not consumed, if it can. */
  detach(unread: Buffer): void;
}

const extras = new WeakMap<Client<unknown>, AddedExtra>();

/** remember notes a handle's extra when it is added. */
export function remember<S>(client: Client<S>, extra: AddedExtra): void {
  extras.set(client as Client<unknown>, extra);
}

/** extraOf is a handle's extra, for one that has one. */
export function extraOf<S>(client: Client<S>): AddedExtra | undefined {
  return extras.get(client as Client<unknown>);
}
