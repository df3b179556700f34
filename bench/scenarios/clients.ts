/**
 * The client process of the scenarios in bench/scenarios/ (bigroom, restart,
 * hostile), started by their runners pinned to core 1 and driven over IPC
 * (./protocol.ts). Each process hosts one role (./bigroom-clients.ts,
 * ./restart-clients.ts, ./hostile-clients.ts) and reports, with each result,
 * its own CPU and event-loop delay since the last start or window start, so that
 * the runner can tell a saturated generator from a slow server.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { round } from '../lib/proc.js'
import { BigroomClients } from './bigroom-clients.js'
import type { Report, Role } from './counting.js'
import { HostileClients, MembersClients, ProbeClient } from './hostile-clients.js'
import type { ClientsCommand, ClientsConfig, ClientsEvent, ClientsResult, ProcessFigures } from './protocol.js'
import { RestartClients } from './restart-clients.js'

if (process.send === undefined) {
  process.stderr.write('bench/scenarios/clients.ts is started by the scenario runners (npm run bench -- bigroom|restart|hostile), not directly\n')
  process.exit(2)
}

function post (message: ClientsEvent): void {
  process.send?.(message)
}

/** This process's CPU and event-loop delay from `begin` to `end`. */
class Meter {
  private cpu = process.cpuUsage()
  private wall = performance.now()
  private readonly loop = monitorEventLoopDelay({ resolution: 5 })

  begin (): void {
    this.cpu = process.cpuUsage()
    this.wall = performance.now()
    this.loop.reset()
    this.loop.enable()
  }

  end (config: ClientsConfig, clients: number): ProcessFigures {
    const cpu = process.cpuUsage(this.cpu)
    const wallMs = Math.max(1, performance.now() - this.wall)
    const figures = {
      role: config.role,
      clients,
      cpuShareOfOneCore: round((cpu.user + cpu.system) / 1000 / wallMs, 4),
      loopDelayP99Ms: round(this.loop.percentile(99) / 1e6, 2),
      loopDelayMaxMs: round(this.loop.max / 1e6, 2),
      rssMiB: round(process.memoryUsage.rss() / 2 ** 20, 1)
    }
    this.loop.disable()
    return figures
  }
}

const meter = new Meter()
let role: Role | null = null
let config: ClientsConfig

const report: Report = (result: ClientsResult) => post({ ev: 'result', result, process: meter.end(config, role?.clients ?? 0) })

function createRole (): Role {
  switch (config.role) {
    case 'bigroom': return new BigroomClients(config, report)
    case 'restart': return new RestartClients(config, report)
    case 'members': return new MembersClients(config, report)
    case 'hostile': return new HostileClients(config, report)
    case 'probe': return new ProbeClient(config, report)
  }
}

const fail = (err: unknown): void => post({ ev: 'error', message: err instanceof Error ? err.stack ?? err.message : String(err) })

function handle (message: ClientsCommand): void {
  if (message.cmd === 'setup') {
    config = message.config
    const created = role = createRole()
    created.setup().then((setup) => post({ ev: 'ready', setup }), fail)
    return
  }
  if (role === null) throw new Error(`'${message.cmd}' before 'setup'`)
  switch (message.cmd) {
    case 'start':
      meter.begin()
      role.start(message.at)
      return
    case 'window-start':
      meter.begin()
      role.windowStart()
      return
    case 'window-end':
      role.windowEnd().then((result) => { if (result !== null) report(result) }, fail)
      return
    case 'stop':
      role.stop()
      // Closing handshakes get a moment; the process leaves either way.
      setTimeout(() => process.exit(0), 500).unref()
  }
}

process.on('message', (message: ClientsCommand) => {
  try {
    handle(message)
  } catch (err) {
    fail(err)
  }
})
// The runner gone (even killed): leave at once, closing every socket with the process.
process.on('disconnect', () => process.exit(0))
process.on('uncaughtException', (err) => {
  fail(err)
  process.exit(1)
})
