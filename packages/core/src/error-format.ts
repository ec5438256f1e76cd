/**
 * error-format — an error as a person should read it: what went wrong and where in their code,
 * without the frames of Node, the loader or netplex itself.
 */
import { isConfigurationError } from './errors.js';

/** userFrameOf finds the first stack frame in the user's own code: `file:line:col`, or undefined. */
export function userFrameOf(stack: string | undefined): string | undefined {
  if (!stack) return undefined;
  for (const line of stack.split('\n').slice(1)) {
    // `at fn (/path:1:2)` or `at /path:1:2`: the path starts the location. Node's own frames
    // (`node:internal/process/task_queues:95:5`) name no file and are never the user's.
    const m = /^at (?:.*\()?((?:file:\/\/)?\/[^():]+):(\d+):(\d+)\)?$/.exec(line.trim());
    if (!m) continue;
    const file = m[1]!.replace(/^file:\/\//, '');
    if (/[/\\]node_modules[/\\]/.test(file) || /[/\\]packages[/\\](core|supervisor)[/\\]dist[/\\]/.test(file))
      continue;
    return `${file}:${m[2]}:${m[3]}`;
  }
  return undefined;
}

/**
 * formatUserError renders an error in one or two lines: a compile error as the compiler says it
 * (it names file, line and column), anything else as `Name: message (at file:line:col)`, following
 * `cause` to the user's own exception when a netplex error wraps it.
 */
export function formatUserError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // A configuration error already says where: the option's source (file:line, command line).
  if (isConfigurationError(err)) return err.message;
  if (err.name === 'TransformError' || /^Transform failed/.test(err.message)) {
    return err.message.replace(/^Transform failed with \d+ errors?:\n/, '').trim();
  }
  const root = err.cause instanceof Error ? err.cause : err;
  const where = userFrameOf(root.stack);
  const head = root === err ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : err.message;
  return where ? `${head} (at ${where})` : head;
}
