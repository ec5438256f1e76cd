/**
 * httpd — a tiny HTTP/1.1 responder, in the spirit of Net::Server::HTTP: every request gets the same
 * small answer, and connections are kept alive as HTTP/1.1 says. The benchmark drives it with wrk.
 *
 *   netplex run packages/examples/src/httpd.ts --port=8080
 *   curl -v http://127.0.0.1:8080/
 *
 * Requests are parsed line by line with the input helpers; a request body (Content-Length) is
 * skipped. Chunked request bodies are not supported (501); a malformed request gets 400 and the
 * connection is closed.
 */
import { type Client, type InputBuffer, isMain, MultiplexServer, type Mux } from '@netplex/core';

/** HttpState is where a connection is in its current request. */
export interface HttpState {
  /** The request line once read; undefined while waiting for the next request. */
  method: string | undefined;
  version: string;
  headerCount: number;
  contentLength: number;
  /** Bytes of the request body still to skip. */
  bodyLeft: number;
  keepAlive: boolean | undefined;
  chunked: boolean;
}

const BODY = 'Hello, world!\n';
const MAX_HEADERS = 100;

function response(status: string, keepAlive: boolean, body: string, withBody: boolean): Buffer {
  return Buffer.from(
    `HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: ${keepAlive ? 'keep-alive' : 'close'}\r\n\r\n${withBody ? body : ''}`,
    'latin1',
  );
}

// The answers are fixed, so they are built once.
const OK_KEEP = response('200 OK', true, BODY, true);
const OK_CLOSE = response('200 OK', false, BODY, true);
const HEAD_KEEP = response('200 OK', true, BODY, false);
const HEAD_CLOSE = response('200 OK', false, BODY, false);
const BAD_REQUEST = response('400 Bad Request', false, 'bad request\n', true);
const TOO_MANY = response('431 Request Header Fields Too Large', false, 'too many headers\n', true);
const NOT_IMPLEMENTED = response('501 Not Implemented', false, 'chunked requests are not supported\n', true);

function fresh(): HttpState {
  return {
    method: undefined,
    version: '',
    headerCount: 0,
    contentLength: 0,
    bodyLeft: 0,
    keepAlive: undefined,
    chunked: false,
  };
}

/** Httpd answers every HTTP request with a fixed small body. */
export class Httpd extends MultiplexServer<HttpState> {
  override muxConnection(_mux: Mux<HttpState>, client: Client<HttpState>): void {
    client.state = fresh();
  }

  override muxInput(_mux: Mux<HttpState>, client: Client<HttpState>, input: InputBuffer): void {
    const st = client.state;
    // Each turn consumes a line or body bytes, so this ends when the input runs dry or the client closes.
    while (client.open) {
      if (st.bodyLeft > 0) {
        const n = Math.min(st.bodyLeft, input.length);
        if (n === 0) return;
        input.consume(n);
        st.bodyLeft -= n;
        if (st.bodyLeft === 0) this.#answer(client);
        continue;
      }
      const line = input.lineBuffer();
      if (line === undefined) return;
      if (st.method === undefined) {
        // RFC 9112 2.2: ignore empty lines before a request line.
        if (line.length === 0) continue;
        const parts = line.toString('latin1').split(' ');
        if (parts.length !== 3 || !parts[0] || !/^HTTP\/1\.[01]$/.test(parts[2] ?? '')) {
          this.#fail(client, input, BAD_REQUEST);
          return;
        }
        st.method = parts[0];
        st.version = parts[2]!;
        continue;
      }
      if (line.length > 0) {
        if (++st.headerCount > MAX_HEADERS) {
          this.#fail(client, input, TOO_MANY);
          return;
        }
        this.#header(st, line.toString('latin1'));
        continue;
      }
      // The empty line ends the headers.
      if (st.chunked) {
        this.#fail(client, input, NOT_IMPLEMENTED);
        return;
      }
      if (Number.isNaN(st.contentLength)) {
        this.#fail(client, input, BAD_REQUEST);
        return;
      }
      if (st.contentLength > 0) st.bodyLeft = st.contentLength;
      else this.#answer(client);
    }
  }

  #header(st: HttpState, header: string): void {
    const colon = header.indexOf(':');
    if (colon <= 0) return;
    const name = header.slice(0, colon).trim().toLowerCase();
    const value = header
      .slice(colon + 1)
      .trim()
      .toLowerCase();
    if (name === 'content-length') st.contentLength = /^\d+$/.test(value) ? Number(value) : Number.NaN;
    else if (name === 'transfer-encoding') st.chunked = value !== 'identity';
    else if (name === 'connection') {
      if (value.includes('close')) st.keepAlive = false;
      else if (value.includes('keep-alive')) st.keepAlive = true;
    }
  }

  #answer(client: Client<HttpState>): void {
    const st = client.state;
    const keepAlive = st.keepAlive ?? st.version === 'HTTP/1.1';
    const head = st.method === 'HEAD';
    client.write(keepAlive ? (head ? HEAD_KEEP : OK_KEEP) : head ? HEAD_CLOSE : OK_CLOSE);
    // Reset in place: muxInput's loop holds this same object for the next pipelined request.
    if (keepAlive) Object.assign(st, fresh());
    else client.close();
  }

  #fail(client: Client<HttpState>, input: InputBuffer, answer: Buffer): void {
    input.clear();
    client.write(answer);
    client.close();
  }
}

if (isMain(import.meta.url)) await Httpd.run();
