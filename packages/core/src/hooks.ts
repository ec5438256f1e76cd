/**
 * hooks — the names of every hook, in the order the seed's flows run them, and their signatures.
 *
 * One list drives the types, the hook table of docs/guides/writing-a-server.md and the start flow (server/start-flow.ts runs the
 * start-up hooks as steps in this order, which its test checks); the interfaces below are the
 * signatures MultiplexServer implements, and the parts of netplex call hooks only through them.
 * The Perl name is kept next to each so that a Net::Server user finds their hook.
 */
import type { Client } from './connection/client.js';
import type { InputBuffer } from './connection/input.js';
import type { Listener } from './listeners.js';
import type { Mux } from './mux.js';

/** processHooks are the server-wide hooks, in the order of Net::Server's PROCESS FLOW. */
export const processHooks = [
  ['configureHook', 'configure_hook'],
  ['postConfigureHook', 'post_configure_hook'],
  ['restartOpenHook', 'restart_open_hook'],
  ['postBindHook', 'post_bind_hook'],
  ['preLoopHook', 'pre_loop_hook'],
  ['preServerCloseHook', 'pre_server_close_hook'],
  ['postChildCleanupHook', 'post_child_cleanup_hook'],
  ['restartCloseHook', 'restart_close_hook'],
  ['fatalHook', 'fatal_hook'],
  ['runDequeue', 'run_dequeue'],
  // netplex's own, for reloads that migrate connections (no Perl counterpart):
  ['serverFreeze', '-'],
  ['serverThaw', '-'],
] as const;

/** clientHooks are the per-connection hooks, in the order of the seed's CLIENT PROCESSING. */
export const clientHooks = [
  ['postAcceptHook', 'post_accept_hook'],
  ['allowDenyHook', 'allow_deny_hook'],
  ['requestDeniedHook', 'request_denied_hook'],
  ['muxConnection', 'mux_connection'],
  ['muxInput', 'mux_input'],
  ['muxOutbufferEmpty', 'mux_outbuffer_empty'],
  ['muxTimeout', 'mux_timeout'],
  ['muxEof', 'mux_eof'],
  ['postProcessRequestHook', 'post_process_request_hook'],
  ['muxClose', 'mux_close'],
  // netplex's own, for reloads that migrate connections (no Perl counterpart):
  ['muxFreeze', '-'],
  ['muxThaw', '-'],
] as const;

/** ProcessHookName is one of the server-wide hook names. */
export type ProcessHookName = (typeof processHooks)[number][0];
/** ClientHookName is one of the per-connection hook names. */
export type ClientHookName = (typeof clientHooks)[number][0];
/** HookName is any hook a server class may override. */
export type HookName = ProcessHookName | ClientHookName;

/** perlNameOf gives the Net::Server name of a hook, for logs and docs. */
export function perlNameOf(hook: HookName): string {
  for (const [name, perl] of [...processHooks, ...clientHooks])
    if (name === hook && perl !== '-') return perl;
  return hook;
}

/** isPromiseLike tells a hook's thenable result apart from a plain value without allocating. */
export function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** MaybePromise is what a hook returns: a value, or a promise of it. */
export type MaybePromise<T> = T | Promise<T>;

/** ProcessHookMethods are the server-wide hooks' signatures (see processHooks). */
export interface ProcessHookMethods {
  configureHook(): MaybePromise<void>;
  postConfigureHook(): MaybePromise<void>;
  restartOpenHook(): MaybePromise<void>;
  postBindHook(): MaybePromise<void>;
  preLoopHook(): MaybePromise<void>;
  preServerCloseHook(): MaybePromise<void>;
  postChildCleanupHook(): MaybePromise<void>;
  restartCloseHook(): MaybePromise<void>;
  fatalHook(error: Error): MaybePromise<void>;
  runDequeue(): MaybePromise<void>;
  serverFreeze(): MaybePromise<unknown>;
  serverThaw(data: unknown): MaybePromise<void>;
}

/** ClientHookMethods are the per-connection hooks' signatures (see clientHooks). */
export interface ClientHookMethods<S> {
  postAcceptHook(client: Client<S>): MaybePromise<void>;
  allowDenyHook(client: Client<S>): MaybePromise<boolean>;
  requestDeniedHook(client: Client<S>): MaybePromise<void>;
  muxConnection(mux: Mux<S>, client: Client<S>): MaybePromise<void>;
  muxInput(mux: Mux<S>, client: Client<S>, input: InputBuffer): MaybePromise<void>;
  /** Optional: a server that does not define it pays nothing for it (see MultiplexServer). */
  muxOutbufferEmpty?(mux: Mux<S>, client: Client<S>): MaybePromise<void>;
  muxTimeout(mux: Mux<S>, target: Client<S> | Listener): MaybePromise<void>;
  muxEof(mux: Mux<S>, client: Client<S>, input: InputBuffer): MaybePromise<void>;
  postProcessRequestHook(client: Client<S>): MaybePromise<void>;
  muxClose(mux: Mux<S>, client: Client<S>): MaybePromise<void>;
  muxFreeze(mux: Mux<S>, client: Client<S>): MaybePromise<unknown>;
  muxThaw(mux: Mux<S>, client: Client<S>, state: unknown): MaybePromise<void>;
}

/** HookMethods are every hook's signature: what the parts of netplex call a server through. */
export type HookMethods<S> = ProcessHookMethods & ClientHookMethods<S>;

// The lists above and the interfaces name the same hooks: a hook added to one and not the other
// does not compile.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const listsMatchInterfaces: [
  Same<ProcessHookName, keyof ProcessHookMethods>,
  Same<ClientHookName, keyof ClientHookMethods<unknown>>,
] = [true, true];
void listsMatchInterfaces;
