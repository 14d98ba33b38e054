/** The webgpu engine against ref through the one conformance suite (tests/support/conformance.ts). */

import { conformance } from "./support/conformance.ts";

conformance("webgpu");
