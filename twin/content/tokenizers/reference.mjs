// Reference token ids from the registry packages themselves, for build_tokenizers.py's verification.
//   node reference.mjs LLAMA3_PKG_DIR GPT_TOKENIZER_PKG_DIR CORPUS.json OUT.json
// Runs llama3-tokenizer-js's own test suite (runTests throws on a failure), then encodes every corpus string
// with llama3-tokenizer-js (no BOS/EOS) and with gpt-tokenizer's o200k_base encoding.
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const [llamaDir, gptDir, corpusPath, outPath] = process.argv.slice(2)
const llama = (await import(pathToFileURL(join(llamaDir, 'bundle', 'llama3-tokenizer-with-baked-data.js')))).default
const require = createRequire(import.meta.url)
const o200k = require(join(gptDir, 'cjs', 'encoding', 'o200k_base.js'))

const log = console.log
console.log = () => {} // runTests prints one line per test
try {
  llama.runTests()
} finally {
  console.log = log
}
const corpus = JSON.parse(readFileSync(corpusPath, 'utf8'))
const out = {
  llama3: corpus.map((text) => llama.encode(text, { bos: false, eos: false })),
  o200k_base: corpus.map((text) => o200k.encode(text)),
}
writeFileSync(outPath, JSON.stringify(out))
console.log(`llama3-tokenizer-js runTests passed; ${corpus.length} corpus strings encoded by both packages`)
