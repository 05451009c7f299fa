// The list of commands. A command appears here (and so in --help) only once it works.
import type { Command } from 'commander';
import type { Runner } from './main.js';

export type RegisterCommand = (program: Command, run: Runner) => void;

export const commands: RegisterCommand[] = [];
