/**
 * The one error class for a user's situation (a bad flag, a folder in use, a
 * file that cannot be written, a damaged input): the CLI prints its message
 * as one line and exits with its code, without a stack trace. Anything else
 * that escapes a command is a bug and keeps its stack trace
 * (lib/cli/usage_error.ts decides which is which).
 *
 * @module
 */

/** A situation the user can act on; its message is one sentence naming the thing at fault. Exit code 1. */
export class UserError extends Error {
  /** The process exit code. */
  readonly exitCode: number = 1;
}

/** A mistake on the command line or in a request (bad flags, unknown names, bad values); exit code 2. */
export class UsageError extends UserError {
  override readonly exitCode: number = 2;
}
