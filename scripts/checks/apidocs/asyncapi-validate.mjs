// Validates an AsyncAPI document with the AsyncAPI parser, the ecosystem's own validator (the
// specification's JSON Schema and its Spectral rule set). Prints every diagnostic; exits 1 when
// one of them is an error, or when the document could not be parsed.
//
//   node asyncapi-validate.mjs asyncapi.json

import { readFile } from 'node:fs/promises';
import { Parser } from '@asyncapi/parser';

const SEVERITIES = ['error', 'warning', 'information', 'hint'];

const file = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(await readFile(file, 'utf8'), { source: file });
for (const d of diagnostics) {
  const at = d.path.length > 0 ? `/${d.path.join('/')}` : '(the document)';
  console.log(`${SEVERITIES[d.severity] ?? d.severity}: ${d.code}: ${d.message} at ${at}`);
}
const errors = diagnostics.filter((d) => d.severity === 0).length;
console.log(
  `${file}: AsyncAPI ${document?.version() ?? '?'}, ${errors} errors, ${diagnostics.length - errors} other diagnostics`,
);
if (errors > 0 || document === undefined) {
  process.exit(1);
}
