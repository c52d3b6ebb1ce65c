/** Lia's custom search attributes, as the server registers them and the workflow sets them. */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { SEARCH_ATTRIBUTES } from './task.js';

export const OWNER_KEY = defineSearchAttributeKey(SEARCH_ATTRIBUTES.owner, SearchAttributeType.KEYWORD);
export const STATUS_KEY = defineSearchAttributeKey(SEARCH_ATTRIBUTES.status, SearchAttributeType.KEYWORD);
export const HOST_KEY = defineSearchAttributeKey(SEARCH_ATTRIBUTES.host, SearchAttributeType.KEYWORD);
export const LIA_SEARCH_ATTRIBUTE_KEYS = [OWNER_KEY, STATUS_KEY, HOST_KEY];

/** `--search-attribute` flags for `temporal server start-dev`. */
export const searchAttributeFlags = (): string[] =>
  Object.values(SEARCH_ATTRIBUTES).flatMap((name) => ['--search-attribute', `${name}=Keyword`]);
