// Which nodes a command acts on: the inventory (native or Ansible, with the
// command line's SSH overrides), narrowed by --limit, then by --shard. One
// place, so plan, apply and rollback can never disagree about the selection.
import { selectNodes } from '../core/limit.js';
import { shardNodes } from '../core/shard.js';
import type { Inventory, NodeSpec } from '../core/types.js';
import { loadInventory } from '../inventory/load.js';
import type { SshOverrides } from '../inventory/resolve.js';
import type { Logger } from '../output/logger.js';
import { describeSshSources } from '../ssh/ssh-config.js';

export interface NodeSelection {
  limit: string[];
  /** `i/n`: this controller's share of the selected nodes (CI matrices). */
  shard?: string;
  /** --ssh-user, --ssh-port, --identity, --known-hosts: beat the inventory. */
  sshOverrides?: SshOverrides;
  /** --ssh-config: absolute path, or `none`. */
  sshConfig?: string;
}

export async function loadSelection(inventoryPath: string, sel: NodeSelection, log: Logger): Promise<{ inventory: Inventory; nodes: NodeSpec[] }> {
  const inventory = await loadInventory(inventoryPath, {
    ...(sel.sshOverrides ? { overrides: sel.sshOverrides } : {}),
    ...(sel.sshConfig ? { sshConfig: sel.sshConfig } : {}),
  });
  for (const w of inventory.warnings) log.warn(`inventory: ${w}`);
  // --verbose: where each SSH setting came from, when an ssh_config took part.
  for (const n of inventory.nodes) {
    const sources = inventory.sshSources?.[n.name];
    if (sources) log.debug(`${n.name}: ssh ${describeSshSources(n.ssh, sources)}`);
  }
  const limited = selectNodes(inventory.nodes, sel.limit);
  const nodes = sel.shard ? shardNodes(limited, sel.shard) : limited;
  if (sel.shard) log.info(`shard ${sel.shard}: ${nodes.length} of ${limited.length} selected node${limited.length === 1 ? '' : 's'}`);
  return { inventory, nodes };
}
