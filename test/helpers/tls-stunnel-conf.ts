/**
 * A small reader of stunnel config files for tests: the way stunnel itself splits them (comment
 * lines start with ';' or '#', `[name]` opens a section, `key = value` otherwise; keys are
 * case-insensitive and may repeat).
 */
export interface ParsedSection {
  name: string;
  options: Map<string, string[]>;
}

export interface ParsedStunnelConf {
  comments: string[];
  global: Map<string, string[]>;
  sections: ParsedSection[];
  /** Lines that are none of the above (should be empty). */
  junk: string[];
}

export function parseStunnelConf(text: string): ParsedStunnelConf {
  const conf: ParsedStunnelConf = { comments: [], global: new Map(), sections: [], junk: [] };
  let current = conf.global;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith(';') || line.startsWith('#')) {
      conf.comments.push(line);
      continue;
    }
    const section = /^\[([^\]]+)\]$/.exec(line);
    if (section !== null) {
      current = new Map();
      conf.sections.push({ name: section[1] ?? '', options: current });
      continue;
    }
    const kv = /^([A-Za-z]+)\s*=\s*(.*)$/.exec(line);
    if (kv === null) {
      conf.junk.push(raw);
      continue;
    }
    const key = (kv[1] ?? '').toLowerCase();
    current.set(key, [...(current.get(key) ?? []), kv[2] ?? '']);
  }
  return conf;
}

/** The single value of `key` (lower-case) in `opts`; throws if it is missing or repeated. */
export function one(opts: Map<string, string[]>, key: string): string {
  const values = opts.get(key.toLowerCase()) ?? [];
  if (values.length !== 1) throw new Error(`expected exactly one ${key}, got ${JSON.stringify(values)}`);
  return values[0] ?? '';
}

/** The value a service sees: its own setting, else the global default (stunnel's rule). */
export function effective(conf: ParsedStunnelConf, section: ParsedSection, key: string): string[] {
  return section.options.get(key.toLowerCase()) ?? conf.global.get(key.toLowerCase()) ?? [];
}
