// `node --import ./module-log.mjs ...` appends every module the program resolves (one URL per
// line) to the file named by OVN_DEPLOY_MODULE_LOG. Plain JavaScript: it runs before anything
// else, in bare node. The hook runs on Node's loader thread, so it writes synchronously.
import { register } from 'node:module';

const hook = `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.OVN_DEPLOY_MODULE_LOG, r.url + '\\n');
  return r;
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
