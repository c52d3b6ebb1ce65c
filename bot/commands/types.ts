import type {
  AutocompleteInteraction,
  ChatInputCommandInteraction,
  SlashCommandOptionsOnlyBuilder,
} from 'discord.js';
import type { BotContext } from '../context.js';

/** One slash command: its definition (deployed to Discord) and its handlers. */
export interface Command {
  data: SlashCommandOptionsOnlyBuilder;
  execute(i: ChatInputCommandInteraction, ctx: BotContext): Promise<void>;
  autocomplete?(i: AutocompleteInteraction, ctx: BotContext): Promise<void>;
}
