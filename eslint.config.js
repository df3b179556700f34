import neostandard from 'neostandard'
import globals from 'globals'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', 'test-output/**', 'bench/results/**', 'public/build/**'] }),
  { files: ['public/**/*.ts'], languageOptions: { globals: globals.browser } }
]
