/** The one in-process serializer (src/tools/retry.ts): per key in call order, failures included; keys independent. */
import { describe, expect, it } from 'vitest';
import { serializer, sleep } from '../src/tools/retry.js';

describe('serializer', () => {
  it('runs calls of one key one after another in call order, after a failure too; other keys at once', async () => {
    const turn = serializer();
    const log: string[] = [];
    const job = (name: string, ms: number, fail = false) => async () => {
      log.push(`${name}+`);
      await sleep(ms);
      log.push(`${name}-`);
      if (fail) throw new Error(name);
      return name;
    };
    const a1 = turn('a', job('a1', 40, true));
    const a2 = turn('a', job('a2', 10));
    const b1 = turn('b', job('b1', 10));
    await expect(a1).rejects.toThrow('a1');
    expect(await a2).toBe('a2');
    expect(await b1).toBe('b1');
    // a2 starts only once a1 has ended; b1 runs meanwhile.
    expect(log.indexOf('a2+')).toBeGreaterThan(log.indexOf('a1-'));
    expect(log.indexOf('b1+')).toBeLessThan(log.indexOf('a1-'));
    expect(log.indexOf('b1-')).toBeLessThan(log.indexOf('a1-'));
  });
});
