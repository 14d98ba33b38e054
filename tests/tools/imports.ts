/**
 * The module specifiers a TypeScript file imports, found by a small lexer
 * rather than a regular expression over the text, so an import written in a
 * comment, a string or a template literal is not mistaken for one. It finds
 * `import ... from "x"`, `import type ... from "x"`, `import "x"`,
 * `export ... from "x"`, `import("x")` (also in type positions) and their
 * line numbers. A specifier computed at run time (`import(name)`) cannot be
 * known from the text and is not reported.
 *
 * @module
 */

/** One import found in a source file. */
export interface ImportRef {
  /** The specifier as written, e.g. `../cli/train.ts`. */
  readonly specifier: string;
  /** The 1-based line of the `import` or `export` keyword. */
  readonly line: number;
}

interface Token {
  /** `id`: identifier, keyword or number; `str`: a string or substitution-free template literal; `punct`. */
  readonly kind: "id" | "str" | "punct";
  readonly value: string;
  readonly line: number;
}

const IDENT = /[A-Za-z0-9_$\u0080-\uffff]/;

/** Keywords after which a `/` starts a regular expression literal, not a division. */
const REGEX_AFTER = new Set([
  "return",
  "typeof",
  "instanceof",
  "in",
  "of",
  "new",
  "delete",
  "void",
  "throw",
  "case",
  "do",
  "else",
  "yield",
  "await",
]);

/** Splits TypeScript source into the tokens the import scan needs, skipping comments and regex literals. */
function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  // One entry per open template substitution `${`: the brace depth inside it, so its closing `}` is found.
  const templates: number[] = [];
  let line = 1;
  let i = 0;
  const push = (kind: Token["kind"], value: string, at: number) => tokens.push({ kind, value, line: at });
  const regexAllowed = (): boolean => {
    const prev = tokens.at(-1);
    if (!prev) return true;
    if (prev.kind === "punct") return prev.value !== ")" && prev.value !== "]";
    return prev.kind === "id" && REGEX_AFTER.has(prev.value);
  };
  // Scans template text from i (just after "`" or a substitution's "}"); returns whether the text ended
  // in a substitution and the raw text read.
  const templateText = (): { open: boolean; text: string } => {
    let text = "";
    while (i < src.length) {
      const c = src[i];
      if (c === "\\") {
        text += src.slice(i, i + 2);
        i += 2;
        continue;
      }
      if (c === "`") {
        i++;
        return { open: false, text };
      }
      if (c === "$" && src[i + 1] === "{") {
        i += 2;
        return { open: true, text };
      }
      if (c === "\n") line++;
      text += c;
      i++;
    }
    return { open: false, text };
  };
  while (i < src.length) {
    const c = src[i];
    if (c === "\n") {
      line++;
      i++;
    } else if (c === " " || c === "\t" || c === "\r") {
      i++;
    } else if (c === "/" && src[i + 1] === "/") {
      while (i < src.length && src[i] !== "\n") i++;
    } else if (c === "/" && src[i + 1] === "*") {
      const end = src.indexOf("*/", i + 2);
      const stop = end < 0 ? src.length : end + 2;
      for (let k = i; k < stop; k++) if (src[k] === "\n") line++;
      i = stop;
    } else if (c === "/" && regexAllowed()) {
      i++;
      let inClass = false;
      while (i < src.length && src[i] !== "\n") {
        const r = src[i++];
        if (r === "\\") i++;
        else if (r === "[") inClass = true;
        else if (r === "]") inClass = false;
        else if (r === "/" && !inClass) break;
      }
      while (i < src.length && IDENT.test(src[i])) i++;
      push("punct", "regex", line);
    } else if (c === '"' || c === "'") {
      const at = line;
      let j = i + 1;
      while (j < src.length && src[j] !== c && src[j] !== "\n") j += src[j] === "\\" ? 2 : 1;
      push("str", src.slice(i + 1, j), at);
      i = j + 1;
    } else if (c === "`") {
      const at = line;
      i++;
      const { open, text } = templateText();
      if (open) {
        templates.push(0);
        push("punct", "template", at);
      } else push("str", text, at);
    } else if (c === "{" || c === "}") {
      if (templates.length > 0) {
        if (c === "{") templates[templates.length - 1]++;
        else if (templates[templates.length - 1] === 0) {
          templates.pop();
          i++;
          if (templateText().open) templates.push(0);
          push("punct", "template", line);
          continue;
        } else templates[templates.length - 1]--;
      }
      push("punct", c, line);
      i++;
    } else if (IDENT.test(c)) {
      let j = i + 1;
      while (j < src.length && IDENT.test(src[j])) j++;
      push("id", src.slice(i, j), line);
      i = j;
    } else {
      push("punct", c, line);
      i++;
    }
  }
  return tokens;
}

/** Every import and re-export of `src` with a literal specifier, in source order. */
export function importsOf(src: string): ImportRef[] {
  const t = tokenize(src);
  const found: ImportRef[] = [];
  const is = (k: number, kind: Token["kind"], value?: string) =>
    k < t.length && t[k].kind === kind && (value === undefined || t[k].value === value);
  // The string after `from` at or after k, scanning to the end of the statement.
  const fromClause = (k: number): string | undefined => {
    for (; k < t.length - 1; k++) {
      if (is(k, "punct", ";") || is(k, "punct", "=") || is(k, "id", "import") || is(k, "id", "export")) break;
      if (is(k, "id", "from") && is(k + 1, "str")) return t[k + 1].value;
    }
    return undefined;
  };
  for (let k = 0; k < t.length; k++) {
    const tok = t[k];
    if (tok.kind !== "id" || (tok.value !== "import" && tok.value !== "export")) continue;
    if (k > 0 && is(k - 1, "punct", ".")) continue; // a property named `import`, e.g. `x.import`
    let specifier: string | undefined;
    if (tok.value === "import") {
      if (is(k + 1, "punct", "(")) specifier = is(k + 2, "str") ? t[k + 2].value : undefined;
      else if (is(k + 1, "punct", ".")) specifier = undefined; // import.meta
      else if (is(k + 1, "str")) specifier = t[k + 1].value;
      else specifier = fromClause(k + 1);
    } else {
      // Only `export * ...`, `export {...}` and `export type {...}` can re-export from another module.
      let j = k + 1;
      if (is(j, "id", "type")) j++;
      if (is(j, "punct", "*") || is(j, "punct", "{")) specifier = fromClause(j);
    }
    if (specifier !== undefined) found.push({ specifier, line: tok.line });
  }
  return found;
}
