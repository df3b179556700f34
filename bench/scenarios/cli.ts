/**
 * The command line of the scenarios in this directory, `npm run bench --
 * bigroom|restart|hostile [options]` (bench/fanout/run.ts hands them over): options,
 * defaults, the run, its summary line.
 */
import { parseArgs } from 'node:util'
import { pinRunner } from '../fanout/children.js'
import { positiveNumber, UsageError } from '../fanout/shared.js'
import { bigroom, bigroomLine } from './bigroom.js'
import { hostile, hostileLine } from './hostile.js'
import { ADDRESS_MODES, HOSTILE_PATTERNS, SCENARIO_NAMES, type AddressMode, type HostilePattern, type ScenarioName } from './protocol.js'
import { restart, restartLine } from './restart.js'

export const scenarioUsage = `Scenarios (Shoal only; BENCH_SHOAL_ROOT=/other/checkout measures another checkout's server):
  npm run bench -- bigroom [--users 15000] [--rate N/60] [--deadline 120] [--observers 5] [--idle-seconds 5]
      N idle users register into one room at --rate per second; the observers register first.
      Pass: all N have their welcome within 60 s, and RSS per connection (once idle) <= 8 KiB
  npm run bench -- restart [--addresses one|many] [--users 300 (one), 15000 (many)] [--deadline 90] [--room-size 50]
      N users register, the server restarts (SIGTERM, same DATA_DIR), every client resumes with its
      secret (reconnects from 127.0.0.1, or each from its own address). Pass: one: all within 10 s
      of the new /health; many: all within 30 s
  npm run bench -- hostile [--pattern listening|hop|sync] [--users 2000 (sync 300)] [--hostile 1 (hop 4)]
                   [--rate 59] [--warmup 3] [--seconds 10]
      M idle members, K hostile clients at --rate messages/s each, a probe pinging every 50 ms.
      Figures only (no threshold)
  options for all three: --concurrency 200 (connections opened at once during setup), --setup-seconds 120
`

const spec = {
  target: { type: 'string' },
  users: { type: 'string' },
  rate: { type: 'string' },
  deadline: { type: 'string' },
  observers: { type: 'string' },
  'idle-seconds': { type: 'string' },
  addresses: { type: 'string' },
  'room-size': { type: 'string' },
  pattern: { type: 'string' },
  hostile: { type: 'string' },
  warmup: { type: 'string' },
  seconds: { type: 'string' },
  concurrency: { type: 'string' },
  'setup-seconds': { type: 'string' },
  help: { type: 'boolean', short: 'h' }
} as const
type Values = ReturnType<typeof parseArgs<{ options: typeof spec }>>['values']

/** The options each scenario takes, besides --target, --concurrency and --setup-seconds. */
const ACCEPTED: Record<ScenarioName, Array<keyof Values>> = {
  bigroom: ['users', 'rate', 'deadline', 'observers', 'idle-seconds'],
  restart: ['users', 'addresses', 'deadline', 'room-size'],
  hostile: ['users', 'pattern', 'hostile', 'rate', 'warmup', 'seconds']
}

export const isScenarioName = (value: string | undefined): value is ScenarioName => (SCENARIO_NAMES as readonly string[]).includes(value ?? '')

/** A number option, or its default when absent. */
function option (values: Values, name: Exclude<keyof Values, 'help'>, fallback: number, integer = false): number {
  const raw = values[name] as string | undefined
  return raw === undefined ? fallback : positiveNumber(name, raw, integer)
}

function oneOf<T extends string> (name: string, raw: string | undefined, allowed: readonly T[], fallback: T): T {
  if (raw === undefined) return fallback
  if (!(allowed as readonly string[]).includes(raw)) throw new UsageError(`--${name}: expected ${allowed.join(' or ')}, got ${JSON.stringify(raw)}`)
  return raw as T
}

/** Runs `bigroom`, `restart` or `hostile` from its command line; the exit code. */
export async function scenarioMain (argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: spec, allowPositionals: true })
  const scenario = positionals[0]
  if (values.help === true) {
    process.stdout.write(scenarioUsage)
    return 0
  }
  if (!isScenarioName(scenario) || positionals.length > 1) throw new UsageError(`unexpected arguments: ${positionals.join(' ')}`)
  if (values.target !== undefined && values.target !== 'shoal') throw new UsageError(`${scenario}: --target shoal only`)
  const stray = Object.keys(values).filter((name) => !['target', 'concurrency', 'setup-seconds', 'help', ...ACCEPTED[scenario]].includes(name))
  if (stray.length > 0) throw new UsageError(`${scenario} takes no ${stray.map((name) => `--${name}`).join(', ')}`)
  const common = { concurrency: option(values, 'concurrency', 200, true), setupSeconds: option(values, 'setup-seconds', 120) }
  const command = `npm run bench -- ${argv.join(' ')}`
  pinRunner()
  switch (scenario) {
    case 'bigroom': {
      const users = option(values, 'users', 15_000, true)
      const observers = option(values, 'observers', 5, true)
      if (observers >= users) throw new UsageError('--observers: fewer than --users')
      const record = await bigroom({ ...common, users, observers, rate: option(values, 'rate', users / 60), deadline: option(values, 'deadline', 120), idleSeconds: option(values, 'idle-seconds', 5) }, command)
      process.stdout.write(bigroomLine(record))
      return record.error === null ? 0 : 1
    }
    case 'restart': {
      const addresses: AddressMode = oneOf('addresses', values.addresses, ADDRESS_MODES, 'one')
      const users = option(values, 'users', addresses === 'one' ? 300 : 15_000, true)
      const record = await restart({ ...common, users, addresses, deadline: option(values, 'deadline', 90), roomSize: option(values, 'room-size', 50, true) }, command)
      process.stdout.write(restartLine(record))
      return record.error === null ? 0 : 1
    }
    case 'hostile': {
      const pattern: HostilePattern = oneOf('pattern', values.pattern, HOSTILE_PATTERNS, 'listening')
      const users = option(values, 'users', pattern === 'sync' ? 300 : 2000, true)
      const options = { ...common, users, pattern, hostile: option(values, 'hostile', pattern === 'hop' ? 4 : 1, true), rate: option(values, 'rate', 59), warmup: option(values, 'warmup', 3), seconds: option(values, 'seconds', 10) }
      const record = await hostile(options, command)
      process.stdout.write(hostileLine(record))
      return record.error === null ? 0 : 1
    }
  }
}
