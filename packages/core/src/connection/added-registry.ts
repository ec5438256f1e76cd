/**
 * connection/added-registry — what every handle added with mux.add goes through as it enters the
 * mux (admitAdded), and, for one that is no stream socket (a child process, a UDP socket), the
 * object the server added, which mux.remove hands back, and how to stop hearing it.
 */
import type { AddOptions } from '../mux.js';
import type { ServerContext } from '../server/context.js';
import { type Client, clientControl } from './client.js';

/** AddedExtra is what mux.remove needs of a handle that is no stream socket. */
export interface AddedExtra {
  /** What the server added, and gets back. */
  readonly handle: object;
  /** detach stops netplex hearing the handle, and gives back the input not consumed, if it can. */
  detach(unread: Buffer): void;
}

const extras = new WeakMap<Client<unknown>, AddedExtra>();
const clients = new WeakMap<object, Client<unknown>>();

/** remember notes a handle's extra when it is added. */
export function remember<S>(client: Client<S>, extra: AddedExtra): void {
  extras.set(client as Client<unknown>, extra);
  clients.set(extra.handle, client as Client<unknown>);
}

/** clientOfHandle is the Client of an added handle that is no stream socket, while it is in the mux. */
export function clientOfHandle<S>(ctx: ServerContext<S>, handle: object): Client<S> | undefined {
  const client = clients.get(handle) as Client<S> | undefined;
  return client !== undefined && ctx.sessions.has(client) ? client : undefined;
}

/** extraOf is a handle's extra, for one that has one. */
export function extraOf<S>(client: Client<S>): AddedExtra | undefined {
  return extras.get(client as Client<unknown>);
}

/**
 * admitAdded makes an added handle's client one the mux serves: connected, its output open after its
 * end of input (the server ends it), with the state and callback object the code that added it gave.
 */
export function admitAdded<S>(
  ctx: ServerContext<S>,
  client: Client<S>,
  options: AddOptions<S>,
  movable: boolean,
  setObject: (client: Client<S>) => void,
): void {
  client.accepted = true;
  client.allowHalfOpen = true;
  client.movable = movable;
  clientControl.setPhase(client, 'connected');
  ctx.added.add(client);
  if (options.state !== undefined) client.state = options.state;
  if (options.object !== undefined) setObject(client);
}
