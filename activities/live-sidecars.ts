/**
 * The sidecar connection this worker holds for each task (the latest it opened). A sidecar serves
 * one host connection at a time — a new one takes over — so an activity that needs the guest
 * while the output pump holds it (opening a pull request) sends through the pump's connection.
 */
import type { SidecarConnection } from '../vm/sidecar/client.js';

export const liveSidecars = new Map<string, SidecarConnection>();
