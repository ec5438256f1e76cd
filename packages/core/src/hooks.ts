/**
 * hooks — the names of every hook, in the order the seed's flows run them.
 *
 * One list drives the types, the README table and the runner. The Perl name is kept next to each
 * so that a Net::Server user finds their hook.
 */

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
