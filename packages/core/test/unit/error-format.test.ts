/** formatUserError: what went wrong and where in the user's code, never a frame of Node's own. */
import { describe, expect, it } from 'vitest';
import { formatUserError, userFrameOf } from '../../src/error-format.js';
import { UnknownOptionError } from '../../src/errors.js';

describe('userFrameOf', () => {
  it("finds the user's frame, in either form V8 writes it", () => {
    const stack = [
      'Error: boom',
      '    at Server.preLoopHook (/srv/app/server.ts:12:11)',
      '    at /srv/app/other.ts:3:4',
    ].join('\n');
    expect(userFrameOf(stack)).toBe('/srv/app/server.ts:12:11');
    expect(userFrameOf(['Error: boom', '    at file:///srv/app/main.js:3:4'].join('\n'))).toBe(
      '/srv/app/main.js:3:4',
    );
  });

  it("never takes one of Node's own frames for the user's", () => {
    const stack = [
      'UnknownOptionError: x.conf:3: unknown option max_input_bufer',
      '    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)',
      '    at async Promise.all (index 0)',
    ].join('\n');
    expect(userFrameOf(stack)).toBeUndefined();
  });
});

describe('formatUserError', () => {
  it('gives a configuration error as its message alone: it already says where', () => {
    const err = new UnknownOptionError({
      key: 'max_input_bufer',
      source: { kind: 'conf_file', file: '/etc/x.conf', line: 3 },
      suggestion: 'max_input_buffer',
    });
    expect(formatUserError(err)).toBe(err.message);
    expect(formatUserError(err)).not.toContain('(at ');
  });

  it("names the user's frame for any other error", () => {
    const err = new TypeError('no such thing');
    err.stack = 'TypeError: no such thing\n    at Server.muxInput (/srv/app/server.ts:40:7)';
    expect(formatUserError(err)).toBe('TypeError: no such thing (at /srv/app/server.ts:40:7)');
  });
});
