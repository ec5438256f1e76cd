/**
 * The start flow runs the start-up hooks in the order of hooks.ts's processHooks: the one list the
 * hook table of docs/guides/writing-a-server.md is made from.
 */
import { describe, expect, it } from 'vitest';
import { processHooks } from '../../src/hooks.js';
import { startSteps } from '../../src/server/start-flow.js';

describe('the start flow', () => {
  it('runs every start-up hook of processHooks, in that order', () => {
    const order = processHooks.map(([name]) => name as string);
    const started = startSteps.flatMap((s) => ('hook' in s ? [s.hook as string] : []));
    // The start-up hooks are those processHooks lists before the loop ends (preServerCloseHook).
    const startUp = order.slice(0, order.indexOf('preServerCloseHook'));
    expect(started).toEqual(startUp);
  });

  it('configures before postConfigureHook and binds before postBindHook', () => {
    const names = startSteps.map((s) => ('hook' in s ? s.hook : s.step) as string);
    expect(names.indexOf('configure')).toBeLessThan(names.indexOf('postConfigureHook'));
    expect(names.indexOf('bind')).toBeLessThan(names.indexOf('postBindHook'));
    expect(names.indexOf('accept')).toBe(names.length - 1);
  });
});
