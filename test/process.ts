/**
 * The standalone server as a real process (src/server/main.ts through tsx), for tests
 * of what only a process shows: signals, exit codes, restarts, its files.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { statusOf } from './http.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

/** A fresh, empty directory for one server's DATA_DIR. */
export function tempDataDir (): string {
  return mkdtempSync(join(tmpdir(), 'shoal-data-'))
}

/** A free TCP port on 127.0.0.1 (bound and released). */
export async function freePort (): Promise<number> {
  const probe = net.createServer()
  probe.listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const address = probe.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  probe.close()
  await once(probe, 'close')
  return address.port
}

export interface ServerProcess {
  output: () => { stdout: string, stderr: string }
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null, at: number }>
  kill: (signal: NodeJS.Signals) => void
}

/** A test server's quiet basics: loopback, warnings only, no demo page. */
export const QUIET_ENV = { HOST: '127.0.0.1', LOG_LEVEL: 'warn', DEMO: 'false' } as const

/**
 * Starts src/server/main.ts in its own process with only the given environment (plus
 * PATH, HOME, and a DATA_DIR of its own unless `env` names one).
 */
export function startProcess (env: Record<string, string>): ServerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATA_DIR: tempDataDir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null, at: number }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() }))
  })
  return {
    output: () => ({ stdout, stderr }),
    exited,
    kill: (signal) => { if (child.exitCode === null && child.signalCode === null) child.kill(signal) }
  }
}

/** Waits until the process's /health answers 200 (or the process exits). */
export async function waitReady (t: { teardown: (fn: () => unknown) => void }, proc: ServerProcess, url: string): Promise<void> {
  t.teardown(() => proc.kill('SIGKILL'))
  let exited = false
  proc.exited.then(() => { exited = true }, () => {})
  const deadline = Date.now() + 20_000
  for (;;) {
    if (exited) throw new Error(`server exited before it was ready: ${JSON.stringify(proc.output())}`)
    // Refused, or not yet 200, while the server starts.
    const ok = await statusOf(`${url}/health`).then((status) => status === 200, () => false)
    if (ok) return
    if (Date.now() > deadline) throw new Error(`server not ready within 20 s: ${JSON.stringify(proc.output())}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
