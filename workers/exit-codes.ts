/** How a role's process says why it ended, for whoever supervises it (./lia start, systemd). */

/** This machine cannot run the role (no VM driver passes its self-check): restarting cannot help. */
export const EXIT_UNFIT = 3;
