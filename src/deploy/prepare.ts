/**
 * Everything `deploy` and `central add` need before the first SSH connection: the inventory, the
 * PKI's public files, the metadata secret, the plan, a render function and the SSH connector.
 * Bad input of any kind is reported here (exit 2) before any host is touched.
 */
import { loadInventory } from '../inventory/index.js';
import { packageVersion } from '../version.js';
import { renderHostBundle } from '../render/index.js';
import { planDeploy, type PlanOptions } from './plan.js';
import type { Connect } from './remote.js';
import type { DeployRunOptions } from './run.js';
import { bundleSigner, readMetadataSecret, readSitePki, siteSigner } from './site-pki.js';
import { TRUST_CA_FILE } from './remote.js';
import { sshConnector, type SshSettings } from './ssh-connect.js';

export interface PrepareOptions extends PlanOptions {
  inventoryFile: string;
  pkiDir: string;
  metadataSecretFile?: string;
  ssh: SshSettings;
  /** Tests: reach hosts some other way. */
  connect?: Connect;
}


export async function prepareDeploy(opts: PrepareOptions): Promise<{ run: Omit<DeployRunOptions, 'progress' | 'progressToStderr'>; warnings: string[] }> {
  const { inventory, warnings: inventoryWarnings } = await loadInventory(opts.inventoryFile);
  const plan = planDeploy(inventory, opts);
  const { pki, warnings: pkiWarnings } = await readSitePki(opts.pkiDir);
  const metadataSecret = await readMetadataSecret(opts.metadataSecretFile);
  const signer = await bundleSigner(opts.pkiDir);
  const renderOpts = { generator: `ovn-deploy ${packageVersion()}`, signer, ...(metadataSecret === undefined ? {} : { metadataSecret }) };
  return {
    warnings: [...inventoryWarnings, ...pkiWarnings],
    run: {
      inventory,
      plan,
      render: (h) => {
        const bundle = renderHostBundle(inventory, h.name, pki, renderOpts);
        // The CA a fresh host pins on its first apply (`--trust-ca`), next to the bundle it verifies.
        bundle.files.set(TRUST_CA_FILE, { content: signer.certPem, mode: 0o644 });
        return bundle;
      },
      connect: opts.connect ?? sshConnector(opts.ssh),
      sign: siteSigner(opts.pkiDir, inventory.certificates.leafValidityDays),
    },
  };
}
