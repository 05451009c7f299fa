// The list of commands. A command appears here (and so in --help) only once it works.
import type { Command } from 'commander';
import type { Runner } from './main.js';
import { register as plan } from './plan.js';
import { register as release } from './release.js';
import { register as apply } from './apply.js';
import { register as rollback } from './rollback.js';
import { register as unstick } from './unstick.js';
import { register as completion } from './completion.js';
import { register as inventory } from './inventory.js';

export type RegisterCommand = (program: Command, run: Runner) => void;

export const commands: RegisterCommand[] = [release, plan, apply, rollback, unstick, inventory, completion];
