import type {
  AutocompleteInteraction,
  ChatInputCommandInteraction,
  InteractionEditReplyOptions,
  SlashCommandOptionsOnlyBuilder,
} from 'discord.js';
import type { BotContext } from '../context.js';

/** What a deferred (ephemeral) reply ends up showing. */
export type Reply = string | InteractionEditReplyOptions;

/**
 * One slash command: its definition (deployed to Discord) and its handlers. The router defers
 * the reply before `execute` runs and turns a thrown error into the reply; `execute` returns
 * what the reply shows (or nothing when it has edited the reply itself).
 */
export interface Command {
  data: SlashCommandOptionsOnlyBuilder;
  execute(i: ChatInputCommandInteraction, ctx: BotContext): Promise<Reply | undefined>;
  autocomplete?(i: AutocompleteInteraction, ctx: BotContext): Promise<void>;
}
