// `--config FILE` and the flag defaults it (or ./runc-rollout.config.yaml, or
// the inventory's `rollout:` section) provides. A flag typed on the command
// line always wins; commander tells us which values came from it.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { CONFIG_FILE, loadRolloutDefaults, type RolloutDefaults } from '../inventory/rollout-defaults.js';
import type { CliContext } from './context.js';

export function addConfigOption(cmd: Command): Command {
  return cmd.option('--config <file>', `flag defaults (default: ./${CONFIG_FILE} when present; the inventory's rollout: section wins over it)`);
}

/** `flags` with every key in `keys` that the user did not type taken from the config, when it sets it. */
export async function withConfigDefaults<T extends { config?: string; inventory?: string }>(
  ctx: CliContext,
  cmd: Command | undefined,
  flags: T,
  keys: readonly (keyof RolloutDefaults & string)[],
): Promise<T> {
  const defaults = await loadRolloutDefaults({
    cwd: ctx.cwd,
    ...(flags.config ? { configPath: resolve(ctx.cwd, flags.config) } : {}),
    ...(flags.inventory ? { inventoryPath: resolve(ctx.cwd, flags.inventory) } : {}),
  });
  const out: Record<string, unknown> = { ...flags };
  for (const key of keys) {
    const value = defaults[key];
    if (value === undefined || cmd?.getOptionValueSource(key) === 'cli') continue;
    out[key] = value;
    ctx.log.debug(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${value} (from the config)`);
  }
  return out as T;
}
