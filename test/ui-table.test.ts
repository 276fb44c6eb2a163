import { describe, expect, it } from 'vitest';
import { table } from '../src/ui/table.js';

describe('ui/table', () => {
  it('pads every column but the last to its widest cell, two spaces apart, with no trailing blanks', () => {
    const lines = table(['HOST', 'PID', 'HEALTH'], [['central', '12', 'ok'], ['w1', '-', 'FAIL: not running'], ['worker22', '3456', '']]);
    expect(lines).toEqual(['HOST      PID   HEALTH', 'central   12    ok', 'w1        -     FAIL: not running', 'worker22  3456']);
  });

  it('widens a column for a header longer than its cells and treats a missing cell as empty', () => {
    expect(table(['CERTIFICATE', 'DAYS'], [['a'], ['bb', '7']])).toEqual(['CERTIFICATE  DAYS', 'a', 'bb           7']);
  });
});
