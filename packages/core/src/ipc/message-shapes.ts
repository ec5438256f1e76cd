/**
 * ipc/message-shapes — the shape of every message a worker sends the supervisor, checked where it
 * arrives. A worker runs arbitrary user code and can send anything: what is not a message of the
 * protocol, well formed, with a socket handle exactly where one belongs, is dropped by the
 * supervisor (see workerMessageProblem). The checks are plain code, cheap enough for the relayed
 * broadcasts of a busy server.
 */
import type { WorkerMessage } from './messages.js';

/** A problem with a value: what was expected, or undefined when the value is fine. */
type Check = (value: unknown) => string | undefined;

/** The longest list a worker may send in one message (addresses, connection numbers). */
const MAX_LIST = 100_000;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const count: Check = (v) =>
  Number.isSafeInteger(v) && (v as number) >= 0 ? undefined : `expected a count, got ${describe(v)}`;
/** A connection's id: a count for an accepted one, negative for a handle the server added (mux.add). */
const connId: Check = (v) =>
  Number.isSafeInteger(v) ? undefined : `expected a connection id, got ${describe(v)}`;
const duration: Check = (v) =>
  typeof v === 'number' && Number.isFinite(v) && v >= 0
    ? undefined
    : `expected a duration, got ${describe(v)}`;
const text: Check = (v) => (typeof v === 'string' ? undefined : `expected a string, got ${describe(v)}`);
const optional =
  (check: Check): Check =>
  (v) =>
    v === undefined ? undefined : check(v);
const nullable =
  (check: Check): Check =>
  (v) =>
    v === null ? undefined : check(v);
const flag: Check = (v) =>
  typeof v === 'boolean' ? undefined : `expected true or false, got ${describe(v)}`;
const anything: Check = () => undefined;
const object: Check = (v) => (isObject(v) ? undefined : `expected an object, got ${describe(v)}`);

/** list checks an array of at most MAX_LIST items, each by `item`. */
const list =
  (item: Check): Check =>
  (v) => {
    if (!Array.isArray(v)) return `expected a list, got ${describe(v)}`;
    if (v.length > MAX_LIST) return `a list of ${v.length} items (at most ${MAX_LIST})`;
    for (let i = 0; i < v.length; i++) {
      const problem = item(v[i]);
      if (problem !== undefined) return `[${i}]: ${problem}`;
    }
    return undefined;
  };

/** fields checks an object's fields; fields it does not name are allowed (a newer worker may add some). */
const fields =
  (shape: Record<string, Check>): Check =>
  (v) => {
    if (!isObject(v)) return `expected an object, got ${describe(v)}`;
    for (const key in shape) {
      const problem = shape[key]!(Object.hasOwn(v, key) ? v[key] : undefined);
      if (problem !== undefined) return `${key}: ${problem}`;
    }
    return undefined;
  };

const address: Check = (v) => {
  if (!isObject(v)) return `expected an address, got ${describe(v)}`;
  if (v.proto === 'unix') return fields({ path: text })(v);
  if (v.proto !== 'tcp' && v.proto !== 'udp')
    return `proto: expected tcp, udp or unix, got ${describe(v.proto)}`;
  return fields({
    address: text,
    port: (p) =>
      Number.isInteger(p) && (p as number) >= 0 && (p as number) <= 65535
        ? undefined
        : `expected a port, got ${describe(p)}`,
    family: (f) => (f === 4 || f === 6 ? undefined : `expected 4 or 6, got ${describe(f)}`),
  })(v);
};

const frozenConnection = fields({
  id: connId,
  proto: (p) => (p === 'tcp' || p === 'unix' ? undefined : `expected tcp or unix, got ${describe(p)}`),
  peeraddr: text,
  peerport: count,
  sockaddr: text,
  sockport: count,
  listener: text,
  peerhost: optional(text),
  connectedAt: duration,
  input: optional(text),
  output: optional(text),
  timeoutMs: optional(duration),
  idleMs: optional(duration),
  idleLimitMs: optional(duration),
  buffered: optional(flag),
  halfOpen: optional(flag),
  added: optional(flag),
  link: optional(connId),
  handler: optional(text),
});

const released = fields({
  id: connId,
  output: optional(text),
  end: optional(anything),
  timeoutMs: optional(nullable(duration)),
});

/** The fields of each message type, and whether a socket handle comes with it. */
const shapes: { [T in WorkerMessage['type']]: { check: Check; handle: boolean } } = {
  'netplex:hello': { check: fields({ protocol: optional(count), direct: optional(flag) }), handle: false },
  'netplex:ack': { check: fields({ ack: count }), handle: false },
  'netplex:hook': { check: fields({ hook: nullable(text) }), handle: false },
  'netplex:ready': { check: fields({ addresses: list(address) }), handle: false },
  'netplex:status': { check: fields({ ack: count, connections: count, requests: count }), handle: false },
  'netplex:endloop': { check: anything, handle: false },
  'netplex:fatal': { check: fields({ message: text, code: optional(text) }), handle: false },
  'netplex:server-state': { check: fields({ data: nullable(object) }), handle: false },
  'netplex:conn': { check: fields({ seq: count, conn: frozenConnection }), handle: true },
  'netplex:released': { check: fields({ items: list(released) }), handle: false },
  'netplex:conn-ack': { check: fields({ ok: list(count), failed: list(count) }), handle: false },
  'netplex:migrated': {
    check: fields({ migrated: count, drained: count, failed: count, ms: duration, lost: optional(flag) }),
    handle: false,
  },
  'netplex:broadcast': { check: fields({ data: text, skip: optional(list(count)) }), handle: false },
};

/**
 * workerMessageProblem says what is wrong with a message from a worker, or undefined when it is a
 * well-formed message of the protocol: a known type, its fields of the right kinds, and a socket
 * handle with it exactly when its type carries one.
 */
export function workerMessageProblem(message: unknown, hasHandle: boolean): string | undefined {
  if (!isObject(message) || typeof message.type !== 'string') return 'not a message with a type';
  const shape = (shapes as Record<string, { check: Check; handle: boolean } | undefined>)[message.type];
  if (!Object.hasOwn(shapes, message.type) || shape === undefined)
    return 'a type this supervisor does not know';
  if (hasHandle && !shape.handle) return 'a socket handle came with a message that carries none';
  if (!hasHandle && shape.handle) return 'no socket handle came with it';
  return shape.check(message);
}

/** describe names a value's kind briefly, for a problem's text (never the value itself: it may be huge). */
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `a string of ${v.length} characters`;
  if (typeof v === 'number') return Number.isFinite(v) ? `the number ${v}` : String(v);
  return typeof v === 'object' ? 'an object' : typeof v;
}
