import neostandard from 'neostandard'
import globals from 'globals'

/** Why a test file does not call fetch itself. */
const FETCH_MESSAGE = 'use request(), statusOf() or openStream() from test/http.ts: each reads or cancels the body.'

/** Drivers and frameworks the engine and what it shares with the browser never import. */
const edgePackages = ['fastify', 'fastify-plugin', '@fastify/*', 'pino', 'ioredis', 'better-sqlite3', 'prom-client', 'ws']

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', 'test-output/**', 'bench/results/**', 'public/build/**'] }),
  { files: ['public/**/*.ts'], languageOptions: { globals: globals.browser } },
  {
    // The engine: plain TypeScript; Fastify, drivers and the standalone server sit outside it.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: edgePackages, message: 'src/core is the engine: it imports no framework or driver (adapters and plugins do).' },
          { group: ['**/adapters/*', '**/server/*', '**/client/*', '**/plugins/*', '**/routes/*', '**/index.js'], message: 'src/core depends on nothing outside the engine but schemas/ and src/protocol/.' }
        ]
      }]
    }
  },
  {
    // Shared with the browser: no Node built-ins, nothing but schemas/.
    files: ['src/protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '^(?!\\./|\\.\\./\\.\\./schemas/)', message: 'src/protocol is shared with the browser: it imports only schemas/ and its own files.' }]
      }]
    }
  },
  {
    // The client library: src/protocol, schemas/ and its own files (plus its one event-emitter package).
    files: ['src/client/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '^(?!\\./|\\.\\./protocol/|\\.\\./\\.\\./schemas/|eventemitter3$)', message: 'the client imports only src/protocol, schemas/ and its own files.' }]
      }]
    }
  },
  {
    // Tests: every reply's body is read and every server ends its connections on close,
    // so no teardown waits on a client (test/http.ts and testApp() in test/helpers.ts).
    files: ['test/**/*.ts'],
    ignores: ['test/http.ts', 'test/helpers.ts'],
    rules: {
      'no-restricted-globals': ['error', { name: 'fetch', message: FETCH_MESSAGE }],
      'no-restricted-properties': ['error', { object: 'globalThis', property: 'fetch', message: FETCH_MESSAGE }],
      'no-restricted-imports': ['error', { paths: [{ name: 'fastify', importNames: ['default', 'fastify'], message: 'use testApp() from test/helpers.ts: its close() ends every connection (forceCloseConnections).' }] }]
    }
  }
]
