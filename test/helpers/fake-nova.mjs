// A stand-in for Nova's metadata API: answers 200 with a JSON body when X-Instance-ID-Signature
// is HMAC-SHA256(shared secret, X-Instance-ID), 403 otherwise. Plain JavaScript so it runs with
// bare `node` inside a network namespace (`ip netns exec NS node fake-nova.mjs`).
// Usage: node fake-nova.mjs HOST PORT SECRET_FILE    (prints "listening PORT" when ready)
// Every request is one JSON line on stdout: {path, instanceId, projectId, forwardedFor, status}.
import { Buffer } from 'node:buffer';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import process from 'node:process';

const [host = '127.0.0.1', portArg = '8775', secretFile = ''] = process.argv.slice(2);
// Read from a file, never from argv: a secret on a command line shows in `ps`.
const secret = readFileSync(secretFile, 'utf8').trim();

function signatureOk(instanceId, signature) {
  if (typeof instanceId !== 'string' || typeof signature !== 'string') return false;
  const want = Buffer.from(createHmac('sha256', secret).update(instanceId).digest('hex'));
  const got = Buffer.from(signature);
  return want.length === got.length && timingSafeEqual(want, got);
}

const server = http.createServer((req, res) => {
  const instanceId = req.headers['x-instance-id'];
  const ok = signatureOk(instanceId, req.headers['x-instance-id-signature']);
  const status = ok ? 200 : 403;
  process.stdout.write(
    `${JSON.stringify({ path: req.url, instanceId: instanceId ?? null, projectId: req.headers['x-tenant-id'] ?? null, forwardedFor: req.headers['x-forwarded-for'] ?? null, status })}\n`,
  );
  if (!ok) {
    res.writeHead(403, { 'content-type': 'text/plain' });
    res.end('Invalid proxy request signature.\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ uuid: instanceId, name: 'fake-nova-instance', project_id: req.headers['x-tenant-id'] ?? null }));
});
server.listen(Number(portArg), host, () => process.stdout.write(`listening ${server.address().port}\n`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
