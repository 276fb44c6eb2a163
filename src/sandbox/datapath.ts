/**
 * Which Open vSwitch datapath the sandbox uses: the kernel's when the openvswitch module is
 * loaded (or built in), else the userspace datapath (`datapath_type=netdev`), which needs no
 * kernel support at all: containers, CI runners, this kind of VM.
 */
import { existsSync } from 'node:fs';
import type { Datapath } from './plan.js';

export function detectDatapath(sysModule = '/sys/module/openvswitch'): Datapath {
  return existsSync(sysModule) ? 'system' : 'netdev';
}

export function datapathLabel(d: Datapath): string {
  return d === 'netdev' ? 'userspace (netdev)' : 'kernel (system)';
}
