/** The host bundle's handlebars templates (through the one loader, src/templates.ts). */
import type Handlebars from 'handlebars';
import { hostTemplatesDir } from '../paths.js';
import { loadTemplate } from '../templates.js';

export type HostTemplate = 'service.hbs' | 'dropin.conf.hbs' | 'managed-marker.hbs' | 'firewall.nft.hbs' | 'local-access.nft.hbs' | 'tmpfiles.conf.hbs';

export function hostTemplate(name: HostTemplate): Handlebars.TemplateDelegate {
  return loadTemplate(hostTemplatesDir, name);
}
