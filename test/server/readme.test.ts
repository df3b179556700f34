// The README promises every option is documented, with its variable and default; keep it true.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { ShoalSettings } from '../../schemas/options.js'
import { envName } from '../../src/server/env.js'

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

t.test('README documents every setting with its environment variable and default', async (t) => {
  for (const [name, schema] of Object.entries(ShoalSettings.properties)) {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\` |`))
    t.ok(row, `a table row for ${name}`)
    t.match(row ?? '', `\`${envName(name as keyof typeof ShoalSettings.properties)}\``, `${name} names its variable`)
    const { default: value } = schema as { default?: unknown }
    // A setting without a default (unset means something else) says what in its default column.
    if (value === undefined) t.match(row?.split(' | ')[2] ?? '', /^as `\w+`$/, `${name} says what unset means`)
    else t.match(row ?? '', `\`${JSON.stringify(value)}\``, `${name} shows its default`)
  }
})

t.test('README shows the two set-up commands and links the protocol', async (t) => {
  t.match(readme, 'npm install && npm start')
  t.match(readme, 'npm test')
  t.match(readme, '](docs/protocol.md)')
})
