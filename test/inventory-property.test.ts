/**
 * Property-based (fast-check) tests of the inventory parser (issue 12): random documents and
 * random edits of the example site file only ever give a valid inventory or an InputError whose
 * problems each name a message (exit 2), never another error; and no message quotes more than a
 * short excerpt of the input.
 */
import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { expectInputError } from './helpers/refusals.js';
import { exampleSiteYaml, parseInventory } from '../src/inventory/index.js';

function parsesOrRefuses(text: string): void {
  try {
    parseInventory(text, 'site.yaml');
  } catch (err) {
    // Messages carry excerpts of the input, never whole lines of a long value.
    expectInputError(err, 400);
  }
}

describe('property: the inventory parser never crashes', () => {
  const example = exampleSiteYaml();

  it('random edits of the example site file', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), fc.string({ maxLength: 12 }), fc.nat({ max: 12 })), { minLength: 1, maxLength: 6 }), (edits) => {
        let text = example;
        for (const [pos, insert, remove] of edits) {
          const i = pos % (text.length + 1);
          text = text.slice(0, i) + insert + text.slice(i + remove);
        }
        parsesOrRefuses(text);
      }),
      { numRuns: 300 },
    );
  });

  it('a stray "|" that turns the rest of the file into one scalar: short messages, at most 11 of them', () => {
    // fast-check found this (seed 946856980): yaml quoted the whole rest of the file in one message.
    const text = `        ${example.slice(2)}`;
    const at = 195236119 % (text.length + 1);
    const broken = `${text.slice(0, at)}|${text.slice(at)}`;
    let err: unknown;
    try {
      parseInventory(broken, 'site.yaml');
    } catch (e) {
      err = e;
    }
    expectInputError(err, 400);
    expect((err as InputError).problems.length).toBeLessThanOrEqual(11);
  });

  it('random documents, as YAML', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => parsesOrRefuses(stringify(value))),
      { numRuns: 300 },
    );
  });

  it('site-shaped documents with random hosts', () => {
    const address = fc.oneof(fc.ipV4(), fc.ipV6(), fc.string({ maxLength: 20 }), fc.constantFrom('0.0.0.0', '::', '127.0.0.1', '::1', '::ffff:192.0.2.10', 'fe80::1%eth0', '255.255.255.255'));
    const host = fc.record(
      {
        name: fc.oneof(fc.constantFrom('central1', 'worker1', 'w2'), fc.string({ maxLength: 70 })),
        addresses: fc.array(address, { maxLength: 3 }),
        roles: fc.array(fc.constantFrom('central', 'worker', 'metadata-agent', 'router'), { maxLength: 3 }),
        encap: fc.option(fc.record({ type: fc.constantFrom('geneve', 'vxlan', 'gre'), ip: address }), { nil: undefined }),
      },
      { requiredKeys: ['name'] },
    );
    fc.assert(
      fc.property(fc.array(host, { maxLength: 5 }), fc.option(fc.record({ novaMetadataHost: fc.string({ maxLength: 20 }) }), { nil: undefined }), (hosts, metadataAgent) =>
        parsesOrRefuses(stringify({ site: 'lab', hosts, ...(metadataAgent === undefined ? {} : { metadataAgent }) })),
      ),
      { numRuns: 300 },
    );
  });

  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => parsesOrRefuses(Buffer.from(bytes).toString('utf8'))),
      { numRuns: 300 },
    );
  });
});
