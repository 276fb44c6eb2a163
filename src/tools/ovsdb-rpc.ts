/**
 * One OVSDB `transact` over a unix socket, spoken directly (RFC 7047 JSON-RPC). `ovsdb-client
 * transact` takes the transaction as one argument, and Linux caps one argument at 128 KiB: a
 * restore of 10,000 ports is megabytes. Echo requests are answered while waiting.
 */
import net from 'node:net';

export interface TransactResult {
  /** One result per operation (RFC 7047 4.1.3); an error object where one failed. */
  results: unknown[];
}

export class OvsdbRpcError extends Error {}

/**
 * Sends `["DB", ...ops]` and resolves with the results. Throws on a transport error, a JSON-RPC
 * error or when any operation failed (the first error named; OVSDB then committed nothing).
 */
export async function transact(socketPath: string, db: string, ops: readonly unknown[], timeoutMs = 120_000): Promise<TransactResult> {
  const request = JSON.stringify({ method: 'transact', params: [db, ...ops], id: 1 });
  return new Promise<TransactResult>((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    let buf = '';
    let depth = 0;
    let inString = false;
    let escaped = false;
    let start = 0;
    const timer = setTimeout(() => finish(new OvsdbRpcError(`no answer from ${socketPath} within ${timeoutMs / 1000} s`)), timeoutMs);
    const finish = (err: Error | undefined, value?: TransactResult): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err !== undefined) reject(err);
      else if (value !== undefined) resolve(value);
    };
    const onMessage = (text: string): void => {
      let msg: { id?: unknown; method?: unknown; params?: unknown; result?: unknown; error?: unknown };
      try {
        msg = JSON.parse(text) as typeof msg;
      } catch {
        finish(new OvsdbRpcError('the server sent something that is not JSON'));
        return;
      }
      if (msg.method === 'echo') {
        sock.write(JSON.stringify({ result: msg.params ?? [], error: null, id: msg.id ?? null }));
        return;
      }
      if (msg.id !== 1) return; // a notification
      if (msg.error !== null && msg.error !== undefined) {
        finish(new OvsdbRpcError(`transact refused: ${JSON.stringify(msg.error).slice(0, 300)}`));
        return;
      }
      const results = Array.isArray(msg.result) ? (msg.result as unknown[]) : [];
      const failed = results.find((r) => typeof r === 'object' && r !== null && 'error' in r);
      if (failed !== undefined) {
        const f = failed as { error?: unknown; details?: unknown };
        finish(new OvsdbRpcError(`transaction failed, nothing committed: ${String(f.error)}${f.details === undefined ? '' : `: ${String(f.details).slice(0, 300)}`}`));
        return;
      }
      finish(undefined, { results });
    };
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(request));
    sock.on('error', (e) => finish(new OvsdbRpcError(`${socketPath}: ${e.message}`)));
    sock.on('close', () => finish(new OvsdbRpcError(`${socketPath} closed the connection before answering`)));
    // Messages are concatenated JSON objects: split them by brace depth outside strings.
    sock.on('data', (chunk: string) => {
      const from = buf.length;
      buf += chunk;
      for (let i = from; i < buf.length; i++) {
        const c = buf[i];
        if (inString) {
          if (escaped) escaped = false;
          else if (c === '\\') escaped = true;
          else if (c === '"') inString = false;
        } else if (c === '"') inString = true;
        else if (c === '{') {
          if (depth === 0) start = i;
          depth += 1;
        } else if (c === '}') {
          depth -= 1;
          if (depth === 0) {
            onMessage(buf.slice(start, i + 1));
            buf = buf.slice(i + 1);
            i = -1;
          }
        }
      }
    });
  });
}
