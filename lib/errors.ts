/**
 * The one error class for a user's situation (a folder in use, a file that
 * cannot be written, a damaged input): the CLI prints its message as one line
 * and exits non-zero, without a stack trace. Anything else that escapes a
 * command is a bug and keeps its stack trace.
 *
 * @module
 */

/** A situation the user can act on; its message is one sentence naming the thing at fault. */
export class UserError extends Error {}
