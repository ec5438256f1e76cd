/**
 * connection/handler — per-handle callback objects (IO::Multiplex's
 * `set_callback_object($object, $fh)`): a handle with one has its hooks run as that object's
 * methods instead of the server's. As in IO::Multiplex, a hook the object does not define is not
 * run for that handle (the server's is not called in its place). The interface, MuxHandler, is in
 * mux.ts.
 */
import type { CallbackClass, MuxHandler } from '../mux.js';

/** HandlerHook is a hook a callback object may take over. */
export type HandlerHook = keyof MuxHandler;

/** handlerHooks are the hooks a callback object may define, for checking one that is set. */
export const handlerHooks: readonly HandlerHook[] = [
  'muxInput',
  'muxOutbufferEmpty',
  'muxTimeout',
  'muxEof',
  'muxClose',
];

/** isHandler tells whether a value can be a callback object (an object; its hooks are optional). */
export function isHandler(value: unknown): value is MuxHandler<never> {
  return (typeof value === 'object' && value !== null) || typeof value === 'function';
}

/** callbackClassesOf is what a server's class registers in `static callbackClasses`. */
export function callbackClassesOf(server: object): Readonly<Record<string, CallbackClass>> {
  return (
    (server.constructor as { callbackClasses?: Readonly<Record<string, CallbackClass>> }).callbackClasses ??
    {}
  );
}

/** callbackClassName is the name under which `object`'s class is registered, if it is. */
export function callbackClassName(server: object, object: object): string | undefined {
  for (const [name, cls] of Object.entries(callbackClassesOf(server))) if (object instanceof cls) return name;
  return undefined;
}
