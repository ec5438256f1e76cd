// @ts-check
/**
 * soak-conn — one client of the chat example (packages/examples/src/samplechat.ts) in the soak, and
 * what it checks: every line it sends comes back to it once, in order and unchanged, prefixed with
 * its own number, followed by the right " - sent N byte message"; every other client's line it hears
 * comes in that client's order, none missing and none twice.
 */
import net from 'node:net';

/** @typedef {'talker' | 'idle' | 'churn'} ConnKind */

/**
 * What the soak counts over all its connections.
 * @typedef {object} SoakTally
 * @property {number} sentBytes  bytes of chat lines sent (with their \n)
 * @property {number} echoedBytes  of those, the bytes that came back as the sender's own line
 * @property {number} mismatches  own lines that came back changed or out of order
 * @property {number} idMismatches  own lines that came back under another number than the welcome's
 * @property {number} ackMismatches  " - sent N byte message" lines with the wrong N, or unexpected
 * @property {number} heard  other clients' lines heard
 * @property {number} gaps  other clients' lines missed (a later one of the same client came first)
 * @property {number} repeats  other clients' lines heard twice or out of order
 * @property {number} joins  JOIN and LEFT lines heard
 * @property {number} other  lines of no known form
 * @property {number[]} rttMs  round trips of own lines (sampled)
 */

/** @returns {SoakTally} */
export const newTally = () => ({
  sentBytes: 0,
  echoedBytes: 0,
  mismatches: 0,
  idMismatches: 0,
  ackMismatches: 0,
  heard: 0,
  gaps: 0,
  repeats: 0,
  joins: 0,
  other: 0,
  rttMs: [],
});

/**
 * An unexpected end of a connection (not asked for by the soak): when, on which client port, how,
 * and the bytes it had sent that had not come back.
 * @typedef {{ kind: ConnKind, port: number, at: number, how: string, unanswered: number, welcomed: boolean }} ConnEnd
 */

const OWN = /^\[(\d+) - [^\]]*\] (m (\S+) (\d+) \S+)$/;
const ACK = /^ - sent (\d+) byte message$/;
const WELCOME = /^Welcome, you are number (\d+) to connect\.$/;

/** ChatConn is one chat client: it sends lines when told to and checks everything it receives. */
export class ChatConn {
  /** @type {number | undefined} its number, from the welcome */
  id;
  port = 0;
  seq = 0;
  /** @type {{ text: string, at: number }[]} own lines sent, not yet back */
  pending = [];
  /** @type {number[]} the byte counts of the acks due */
  acks = [];
  /** @type {Map<string, number>} the last sequence number heard from each other client */
  lastSeq = new Map();
  buf = '';
  ended = false;
  closing = false;

  /**
   * @param {ConnKind} kind
   * @param {string} tag  unique for the run: other clients tell this one's lines by it
   * @param {number} serverPort
   * @param {SoakTally} tally
   * @param {{ welcome: (c: ChatConn) => void, acked: (c: ChatConn) => void, end: (c: ChatConn, e: ConnEnd | undefined) => void }} on
   */
  constructor(kind, tag, serverPort, tally, on) {
    this.kind = kind;
    this.tag = tag;
    this.tally = tally;
    this.on = on;
    this.socket = net.connect({ port: serverPort, host: '127.0.0.1' });
    this.socket.setEncoding('latin1');
    this.socket.on('connect', () => {
      this.port = this.socket.localPort ?? 0;
    });
    this.socket.on('data', (/** @type {string} */ d) => this.#data(d));
    /** @type {string | undefined} */
    let error;
    this.socket.on('error', (e) => {
      error = /** @type {NodeJS.ErrnoException} */ (e).code ?? e.message;
    });
    this.socket.on('close', () => {
      this.ended = true;
      const unanswered = this.pending.reduce((n, p) => n + p.text.length + 1, 0);
      const e = this.closing
        ? undefined
        : {
            kind,
            port: this.port,
            at: Date.now(),
            how: error ?? 'EOF',
            unanswered,
            welcomed: this.id !== undefined,
          };
      this.on.end(this, e);
    });
  }

  /**
   * send writes one chat line "m TAG SEQ PAYLOAD\n".
   * @param {string} payload  printable, no spaces
   */
  send(payload) {
    const text = `m ${this.tag} ${++this.seq} ${payload}`;
    this.pending.push({ text, at: Date.now() });
    this.tally.sentBytes += text.length + 1;
    this.socket.write(`${text}\n`);
  }

  /** close ends the connection from this side (it is then not an unexpected end). */
  close() {
    this.closing = true;
    this.socket.end();
  }

  /** @param {string} d */
  #data(d) {
    this.buf += d;
    let nl = this.buf.indexOf('\n');
    while (nl >= 0) {
      const line = this.buf.slice(0, this.buf[nl - 1] === '\r' ? nl - 1 : nl);
      this.buf = this.buf.slice(nl + 1);
      this.#line(line);
      nl = this.buf.indexOf('\n');
    }
  }

  /** @param {string} line */
  #line(line) {
    const t = this.tally;
    const own = OWN.exec(line);
    if (own) {
      const [, id, text, tag, seq] = own;
      if (tag !== this.tag) {
        t.heard++;
        const n = Number(seq);
        const last = this.lastSeq.get(tag);
        if (last !== undefined && n > last + 1) t.gaps += n - last - 1;
        if (last !== undefined && n <= last) t.repeats++;
        else this.lastSeq.set(tag, n);
        return;
      }
      const sent = this.pending.shift();
      if (!sent || sent.text !== text) t.mismatches++;
      else {
        t.echoedBytes += text.length + 1;
        if (this.seq % 8 === 0) t.rttMs.push(Date.now() - sent.at);
      }
      if (Number(id) !== this.id) t.idMismatches++;
      this.acks.push(line.length + 2);
      return;
    }
    const ack = ACK.exec(line);
    if (ack) {
      if (Number(ack[1]) !== this.acks.shift()) t.ackMismatches++;
      this.on.acked(this);
      return;
    }
    const w = WELCOME.exec(line);
    if (w && this.id === undefined) {
      this.id = Number(w[1]);
      this.on.welcome(this);
      return;
    }
    if (line.startsWith('JOIN: ') || line.startsWith('LEFT: ')) t.joins++;
    else t.other++;
  }
}
