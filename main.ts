/**
 * f16repro: reproduce "Standalone 16-bit Training" on your own machine.
 * Entry point; see lib/cli/main.ts for the commands.
 *
 * @module
 */

import { main } from "./lib/cli/main.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));
