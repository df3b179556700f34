/**
 * `npm run bench:report`: turns the fan-out results in bench/results/*.json into
 * docs/performance.md (the machine, the exact commands, one table per scenario,
 * the capacities found) and one SVG chart per swept scenario,
 * docs/performance-<scenario>.svg (p99 latency and server CPU against N, one line
 * per target), rendered with Vega-Lite compiled to Vega and Vega's headless SVG
 * renderer (`renderer: 'none'`, no canvas needed).
 *
 * Which results: for each scenario and target, the runs of its latest sweep (a
 * `sweep-*.json` file lists them), and the latest single run of each N that sweep
 * did not cover (marked "single run"). The `cluster` command's results (one file
 * holding a one-node and a two-node `room` run) get a section of their own: the
 * latest of each target and N, no chart. The update-cpu results are left out
 * (they have their own format).
 *
 * `--out DIR` writes the page and its charts to DIR instead of docs/ (to look at a
 * report without touching the committed one).
 */
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import * as vega from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'
import { RESULTS_DIR, ROOT, round } from './lib/proc.js'
import { isShoal, SCENARIOS, TARGETS, type Scenario, type TargetName } from './fanout/protocol.js'
import type { ClusterRecord as Cluster, RunRecord as Run, SweepRecord as Sweep } from './fanout/records.js'
import { interestVerdict } from './fanout/verdicts.js'

const { values: cli } = parseArgs({ options: { out: { type: 'string' } } })
const DOCS = cli.out === undefined ? join(ROOT, 'docs') : resolve(cli.out)

function load (): { runs: Run[], sweeps: Sweep[], clusters: Cluster[] } {
  const runs: Run[] = []
  const sweeps: Sweep[] = []
  const clusters: Cluster[] = []
  let names: string[] = []
  try {
    names = readdirSync(RESULTS_DIR).filter((name) => name.endsWith('.json'))
  } catch {}
  for (const name of names) {
    try {
      const data = JSON.parse(readFileSync(join(RESULTS_DIR, name), 'utf8')) as { kind?: string }
      if (data.kind === 'fanout-run') runs.push(data as Run)
      else if (data.kind === 'fanout-sweep') sweeps.push(data as Sweep)
      else if (data.kind === 'fanout-cluster') clusters.push(data as Cluster)
    } catch {
      process.stderr.write(`skipping ${name}: not readable JSON\n`)
    }
  }
  return { runs, sweeps, clusters }
}

interface Selection { sweep: Sweep | null, capacity: Sweep['targets'][string] | null, runs: Run[] }

/** For one scenario and target: the runs of its latest sweep, and the latest single run of each other N. */
function select (scenario: Scenario, target: TargetName, runs: Run[], sweeps: Sweep[]): Selection {
  const sweep = sweeps
    .filter((s) => s.scenario === scenario && (s.targets[target]?.runs.length ?? 0) > 0)
    .sort((a, b) => a.date.localeCompare(b.date))
    .at(-1) ?? null
  const capacity = sweep?.targets[target] ?? null
  const files = new Set((capacity?.runs ?? []).map((file) => basename(file)))
  const chosen = runs.filter((run) => run.scenario === scenario && run.target === target && files.has(basename(run.file)))
  const swept = new Set(chosen.map((run) => run.users))
  const singles = new Map<number, Run>()
  for (const run of runs) {
    if (run.scenario !== scenario || run.target !== target || run.sweep !== null || swept.has(run.users)) continue
    // An idle run's RSS per connection depends on when V8 last collected garbage: every run is shown, not only the latest.
    if (scenario === 'idle') {
      chosen.push(run)
      continue
    }
    const current = singles.get(run.users)
    if (current === undefined || current.date < run.date) singles.set(run.users, run)
  }
  chosen.push(...singles.values())
  chosen.sort((a, b) => a.users - b.users || a.date.localeCompare(b.date))
  return { sweep, capacity, runs: chosen }
}

// ---- formatting ----------------------------------------------------------------------
const dash = '–'
const ms = (value: number | null | undefined): string => value === null || value === undefined ? dash : value >= 100 ? String(Math.round(value)) : String(round(value, 1))
const pct = (share: number | null | undefined): string => share === null || share === undefined ? dash : `${round(share * 100, 1)}%`
const num = (value: number | null | undefined, digits = 1): string => value === null || value === undefined ? dash : String(round(value, digits))
const rate = (value: number | null | undefined): string => value === null || value === undefined ? dash : value >= 1e6 ? `${round(value / 1e6, 2)} M` : value >= 1e3 ? `${round(value / 1e3, 1)} k` : String(Math.round(value))
const bytes = (value: number | null | undefined): string => value === null || value === undefined ? dash : value >= 1e6 ? `${round(value / 1e6, 2)} MB` : `${round(value / 1e3, 1)} kB`

function verdict (run: Run): string {
  if (run.pass) return 'pass'
  if (run.setup !== null && !run.setup.complete) return `**fail** (setup: ${run.setup.registered}/${run.setup.target})`
  return '**fail**'
}

function notes (run: Run): string {
  const parts: string[] = []
  if (run.sweep === null) parts.push('single run')
  if (run.error !== null && (run.setup?.complete ?? true)) parts.push(run.error)
  if (run.scenario === 'crowd' && isShoal(run.target)) {
    // Judged again from the figures, with the current rule.
    const interest = interestVerdict(run.target, run.users, run.config.radius ?? 100, run.generator)
    parts.push(`INTEREST_RADIUS ${interest.honoured === true ? 'honoured' : interest.honoured === false ? 'NOT honoured' : 'honoured? cannot tell at this N'}`)
  }
  const g = run.generator
  if (g?.interest !== null && g?.interest !== undefined && run.scenario === 'crowd') parts.push(`${g.interest.receivedSendersPerObserver} senders seen per observer (${g.interest.expectedSendersPerObserver} in radius)`)
  if ((g?.updates.achievedShare ?? 1) < 0.95) parts.push(`only ${pct(g?.updates.achievedShare)} of updates sent`)
  const lag = g?.loopDelayMs.observerP99 ?? g?.loopDelayMs.p99 ?? 0
  if (lag > 20) parts.push(`observers' loop delay p99 ${ms(lag)} ms`)
  const closes = Object.entries(g?.traffic.closes ?? {})
  if (closes.length > 0) parts.push(`closed by server: ${closes.map(([code, n]) => `${code}×${n}`).join(' ')}`)
  if (run.environment !== null && (!run.environment.quietBeforeRun || (run.environment.otherLoadOnServerCore ?? 0) > 0.2)) parts.push('machine busy (see JSON)')
  return parts.join('; ')
}

const escape = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ')

function table (scenario: Scenario, runs: Run[]): string {
  const rows: string[][] = []
  let header: string[]
  if (scenario === 'room' || scenario === 'crowd') {
    header = ['target', 'N', 'result', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'delivery', 'server CPU', 'RSS MiB', 'RSS/conn KiB', 'frames/s', 'bytes/s', 'gen. CPU', 'gen. saturated', 'notes']
    for (const run of runs) {
      const g = run.generator
      rows.push([run.target, String(run.users), verdict(run), ms(g?.latencyMs.p50), ms(g?.latencyMs.p95), ms(g?.latencyMs.p99), ms(g?.latencyMs.max),
        num(g?.delivery.ratio, 4), pct(run.server.cpuShareOfOneCore), num(run.server.rssMiB), num(run.server.rssPerConnectionKiB),
        rate(g?.traffic.framesPerSecond), bytes(g?.traffic.bytesPerSecond), pct(g?.cpu.shareOfOneCore), g === null ? dash : g.cpu.saturated ? '**yes**' : 'no', notes(run)])
    }
  } else if (scenario === 'idle') {
    header = ['target', 'C', 'result', 'server CPU', 'RSS MiB', 'RSS/conn KiB', 'heartbeat pings', 'still open', 'frames/s', 'gen. CPU', 'gen. saturated', 'notes']
    for (const run of runs) {
      const g = run.generator
      rows.push([run.target, String(run.users), verdict(run), pct(run.server.cpuShareOfOneCore), num(run.server.rssMiB), num(run.server.rssPerConnectionKiB),
        g === null ? dash : String(g.traffic.pings), g === null ? dash : String(g.traffic.stillOpen), rate(g?.traffic.framesPerSecond), pct(g?.cpu.shareOfOneCore), g === null ? dash : g.cpu.saturated ? '**yes**' : 'no', notes(run)])
    }
  } else {
    header = ['target', 'K/s', 'result', 'achieved /s', 'failed', 'welcome p50 ms', 'welcome p99 ms', 'server CPU', 'RSS MiB', 'frames/s', 'bytes/s', 'gen. CPU', 'gen. saturated', 'notes']
    for (const run of runs) {
      const g = run.generator
      const c = g?.churn ?? null
      rows.push([run.target, String(run.users), verdict(run), num(c?.achievedRate), c === null ? dash : `${c.failed} of ${c.started}${Object.keys(c.errors).length > 0 ? ` (${Object.entries(c.errors).map(([why, n]) => `${why}×${n}`).join(' ')})` : ''}`,
        ms(c?.welcomeMs.p50), ms(c?.welcomeMs.p99), pct(run.server.cpuShareOfOneCore), num(run.server.rssMiB), rate(g?.traffic.framesPerSecond), bytes(g?.traffic.bytesPerSecond),
        pct(g?.cpu.shareOfOneCore), g === null ? dash : g.cpu.saturated ? '**yes**' : 'no', notes(run)])
    }
  }
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.map(escape).join(' | ')} |`)].join('\n')
}

// ---- cluster -------------------------------------------------------------------------
/** The latest cluster record of each target and N. */
function latestClusters (clusters: Cluster[]): Cluster[] {
  const latest = new Map<string, Cluster>()
  for (const record of clusters) {
    const key = `${record.target} ${record.users}`
    const current = latest.get(key)
    if (current === undefined || current.date < record.date) latest.set(key, record)
  }
  return [...latest.values()].sort((a, b) => a.users - b.users || a.target.localeCompare(b.target))
}

const pair = (a: number | null | undefined, b: number | null | undefined): string => `${ms(a)} / ${ms(b)}`
const signed = (value: number | null | undefined): string => value === null || value === undefined ? dash : `${value >= 0 ? '+' : '−'}${ms(Math.abs(value))}`
const perSecond = (value: number | null | undefined): string => value === null || value === undefined ? dash : `${bytes(value)}/s`

function clusterNotes (record: Cluster): string {
  const parts: string[] = []
  if (record.error !== null) parts.push(record.error)
  for (const [label, run] of [['1 node', record.single], ['2 nodes', record.cluster]] as const) {
    if (run === null) continue
    if (run.error !== null) parts.push(`${label}: ${run.error}`)
    else if (!run.pass) parts.push(`${label}: ${run.failReasons.join('; ')}`)
    if (run.generator?.cpu.saturated === true) parts.push(`${label}: generator saturated (${pct(run.generator.cpu.shareOfOneCore)})`)
    if (run.environment !== null && (!run.environment.quietBeforeRun || (run.environment.otherLoadOnServerCore ?? 0) > 0.2)) parts.push(`${label}: machine busy (see JSON)`)
  }
  // With one node Redis is not used by the run: whatever it did then is someone else's.
  const background = record.single?.redis
  if (background !== null && background !== undefined && ((background.cpuShareOfOneCore ?? 0) > 0.01 || background.inputBytesPerSecond + background.outputBytesPerSecond > 10_000)) {
    parts.push(`Redis busy without the nodes too (1-node window: CPU ${pct(background.cpuShareOfOneCore)}, in ${perSecond(background.inputBytesPerSecond)}, out ${perSecond(background.outputBytesPerSecond)})`)
  }
  if (record.redis.pidNote !== null) parts.push(`Redis CPU not measured: ${record.redis.pidNote}`)
  if (record.redis.cleanupError !== null) parts.push(`keys left in Redis: ${record.redis.cleanupError}`)
  return parts.join('; ')
}

function clusterTable (records: Cluster[]): string {
  const header = ['target', 'N', 'result', '1 node p50 / p99 ms', '2 nodes p50 / p99 ms', 'same-node p50 / p99 ms', 'cross-node p50 / p99 ms', 'added p50 / p99 ms', 'delivery (same / cross)',
    'server CPU, 2 nodes', 'server CPU, 1 node', 'Redis CPU', 'Redis in', 'Redis out', 'notes', 'command']
  const rows = records.map((record) => {
    const one = record.single?.generator ?? null
    const two = record.cluster?.generator ?? null
    const pairs = two?.nodePairs ?? null
    const nodes = record.cluster?.nodes ?? []
    const redis = record.cluster?.redis ?? null
    return [record.target, String(record.users), record.pass ? 'pass' : '**fail**',
      pair(one?.latencyMs.p50, one?.latencyMs.p99), pair(two?.latencyMs.p50, two?.latencyMs.p99),
      pair(pairs?.same.latencyMs.p50, pairs?.same.latencyMs.p99), pair(pairs?.cross.latencyMs.p50, pairs?.cross.latencyMs.p99),
      `${signed(record.addedLatencyMs.p50)} / ${signed(record.addedLatencyMs.p99)}`,
      `${num(two?.delivery.ratio, 4)} (${num(pairs?.same.delivery.ratio, 4)} / ${num(pairs?.cross.delivery.ratio, 4)})`,
      nodes.length === 0 ? dash : `${pct(record.cluster?.server.cpuShareOfOneCore)} (${nodes.map((node) => pct(node.cpuShareOfOneCore)).join(' + ')})`,
      pct(record.single?.server.cpuShareOfOneCore),
      pct(redis?.cpuShareOfOneCore), perSecond(redis?.inputBytesPerSecond), perSecond(redis?.outputBytesPerSecond),
      clusterNotes(record), `\`${record.command}\``]
  })
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.map(escape).join(' | ')} |`)].join('\n')
}

const clusterText = [
  'Shoal as a cluster: two nodes (`NODE_ID` bench-a and bench-b) on one Redis (`REDIS_URL`, a fresh `REDIS_PREFIX` per run, its keys deleted at the end). ' +
  'The scenario is `room` (N users in one room, all moving at 10 Hz, everyone sees everyone), with the clients alternating between the two nodes, the observers too (with the default five: three on bench-a, two on bench-b). ' +
  'Each command runs the same `room` on one node first (the reference, as in the room section), then on the two nodes, back to back; one result file holds both.',
  '',
  '- Both nodes are pinned to core 0, which they share: the "2 nodes" server CPU is their sum on that one core (each node\'s share in brackets). The generator stays on core 1. Redis is a system process, left where the kernel runs it (not pinned).',
  '- Latency: all (observer, update) pairs, as in `room`; then split by where the sender was. A same-node pair goes through one node as in the single-node run; a cross-node pair goes sender → its node, which publishes its users\' moves once per tick (`TICK_HZ=20`: every 50 ms) → Redis pub/sub → the observer\'s node, which shows them at its own next tick: up to one extra tick, about half a tick more on average. ' +
  '"Added" is the two-node figure (all pairs) minus the one-node figure at the same N, for p50 and p99. Delivery is split the same way.',
  '- Redis over the same window: its CPU (utime+stime of the redis-server process from /proc/<pid>/stat, the pid from `INFO server`) as a share of one core, and bytes per second in and out (deltas of `total_net_input_bytes` and `total_net_output_bytes` from `INFO stats`). That is everything the two nodes do with Redis: the tick batches on the pub/sub channel, and the writes of sessions and of each node\'s member list (the JSON also has commands per second). ' +
  'Redis may serve others on the machine too: the notes say when it was busy during the one-node window, when the run did not use it.',
  '- Pass, as in `room`: p99 < 100 ms and delivery ≥ 0.99, for the two-node run.'
].join('\n')

// ---- chart ------------------------------------------------------------------------------
async function chart (scenario: Scenario, runs: Run[]): Promise<string | null> {
  const values = runs
    .filter((run) => run.generator !== null && run.generator.latencyMs.p99 !== null)
    .map((run) => ({
      target: run.target,
      N: run.users,
      p99: Math.max(0.1, run.generator?.latencyMs.p99 ?? 0),
      cpu: round((run.server.cpuShareOfOneCore ?? 0) * 100, 1),
      result: run.pass ? 'pass' : 'fail'
    }))
  // A chart needs a line: at least one target measured at two N or more.
  if (!TARGETS.some((target) => new Set(values.filter((value) => value.target === target).map((value) => value.N)).size >= 2)) return null
  // One colour per target, in the order of TARGETS: shoal, shoal-compact, naive, socketio.
  const color = { field: 'target', type: 'nominal', title: 'target', scale: { domain: [...TARGETS], range: ['#1f77b4', '#9467bd', '#d62728', '#2ca02c'] } } as const
  const x = { field: 'N', type: 'quantitative', title: scenario === 'room' || scenario === 'crowd' ? 'users (N)' : 'N', scale: { type: 'log' } } as const
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `Shoal fan-out benchmark: ${scenario}`, subtitle: 'server pinned to one core; 10 Hz movers; pass = p99 < 100 ms and delivery >= 0.99' },
    data: { values },
    hconcat: [
      {
        width: 320,
        height: 240,
        title: 'p99 end-to-end latency (ms, log)',
        layer: [
          {
            mark: { type: 'line', point: false },
            encoding: { x, y: { field: 'p99', type: 'quantitative', title: 'p99 latency (ms)', scale: { type: 'log' } }, color }
          },
          {
            mark: { type: 'point', filled: true, size: 50 },
            encoding: { x, y: { field: 'p99', type: 'quantitative' }, color, shape: { field: 'result', type: 'nominal', title: 'result', scale: { domain: ['pass', 'fail'], range: ['circle', 'cross'] } } }
          },
          {
            data: { values: [{ limit: 100 }] },
            mark: { type: 'rule', strokeDash: [4, 4], color: '#888' },
            encoding: { y: { field: 'limit', type: 'quantitative' } }
          }
        ]
      },
      {
        width: 320,
        height: 240,
        title: 'server CPU (% of one core)',
        layer: [
          { mark: { type: 'line', point: false }, encoding: { x, y: { field: 'cpu', type: 'quantitative', title: 'server CPU (%)' }, color } },
          { mark: { type: 'point', filled: true, size: 50 }, encoding: { x, y: { field: 'cpu', type: 'quantitative' }, color, shape: { field: 'result', type: 'nominal', title: 'result', scale: { domain: ['pass', 'fail'], range: ['circle', 'cross'] } } } }
        ]
      }
    ],
    config: { font: 'sans-serif', view: { stroke: '#ddd' } }
  }
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' })
  const svg = await view.toSVG()
  view.finalize()
  const file = `performance-${scenario}.svg`
  writeFileSync(join(DOCS, file), svg)
  return file
}

// ---- document --------------------------------------------------------------------------
const scenarioText: Record<Scenario, string> = {
  room: 'N users in one room, all moving at 10 Hz, everyone sees everyone.',
  crowd: 'N users walking a square sized so that each has about 45 others within the interest radius (100 units); Shoal runs with `INTEREST_RADIUS=100`, the baselines have no interest management and send everything to everyone. Delivery counts only the neighbours within 90% of the radius at send time (hysteresis margin).',
  idle: 'C connections registered (rooms of 50) and idle over a 25 s window, so several heartbeats (Shoal: `HEARTBEAT_MS=10000`) fall in it. RSS/conn is (RSS at the end − RSS before the first connection) / C. It includes garbage the setup left that V8 has not collected yet, so it varies from run to run by a few KiB: every run is listed.',
  churn: 'K connects + registers (until `welcome`) + disconnects per second, among 100 users who stay (10 rooms). Shoal keeps a closed user for its grace period (30 s), so its rooms grow during the run.'
}

async function main (): Promise<void> {
  const { runs, sweeps, clusters } = load()
  if (runs.length === 0 && clusters.length === 0) {
    process.stderr.write(`no fan-out results in ${RESULTS_DIR}: run \`npm run bench -- sweep room\` first\n`)
    process.exitCode = 1
    return
  }
  mkdirSync(DOCS, { recursive: true })
  // The runs of cluster records count too: the newest of everything gives the machine and the settings.
  const everyRun = [...runs, ...clusters.flatMap((record) => [record.single, record.cluster].filter((run): run is Run => run !== null))]
  const latest = everyRun.reduce((a, b) => (a.date > b.date ? a : b))
  const m = latest.machine
  const out: string[] = []
  out.push('# Performance: fan-out benchmark',
    '',
    '<!-- Generated by `npm run bench:report` from bench/results/*.json; edit bench/report.ts, not this file. -->',
    '',
    'Position sync is an N-squared problem: with N users moving, every update has up to N−1 recipients. ' +
    'This page compares Shoal with the naive design it replaces (plain `ws`, every update sent to everyone at once, ' +
    'the full user list broadcast on every join, leave and metadata change: `bench/targets/naive.ts`) and with ' +
    'Socket.IO 4 (`socket.broadcast.emit` per update, websocket transport: `bench/targets/socketio.ts`), in the same ' +
    'harness, on the same machine, in the same session.',
    '',
    'Shoal appears twice. `shoal` is Shoal as every client gets it by default, `positions` as JSON text. ' +
    '`shoal-compact` is Shoal with the opt-in compact encoding of positions (binary frames, short ids, 32-bit floats), ' +
    'negotiated by the client at register: the same server process with the same settings, but every client of the ' +
    'generator registers with `"encoding": "compact"`, and the observers decode the binary frames, mapping short ids to ' +
    'users through the User objects they received.',
    '',
    '## Machine',
    '',
    `- CPU: ${m.cpuModel}, ${m.cores} cores; ${m.memoryGiB} GiB of memory; Linux ${m.kernel}; Node.js ${m.node}; open files limit ${m.openFilesLimit ?? 'unknown'}.`,
    '- Everything on 127.0.0.1 (loopback). The server under test is pinned to core 0 (`taskset -c 0`); the load generator and the runner to core 1 (`taskset -c 1`).',
    `- Shoal (\`shoal\` and \`shoal-compact\` alike): the compiled standalone server (\`node dist/src/server/main.js\`, built with \`npx tsc -p tsconfig.build.json\`), ${latest.config.serverEnv?.TICK_HZ !== undefined ? `TICK_HZ=${latest.config.serverEnv.TICK_HZ}` : 'TICK_HZ=20'}, LOG_LEVEL=warn, rate limits raised so that they are not what is measured (\`MESSAGES_PER_SECOND\`, \`MESSAGE_BURST\`, \`REGISTER_LIMIT\`). The baselines run from TypeScript through tsx.`,
    '- The machine is shared with other work: each run first waits (up to 60 s) for both cores to be under 15% busy, and records how busy core 0 was beyond the server during the window; rows marked "machine busy" may be pessimistic.',
    '',
    '## How it measures',
    '',
    '- The load generator (`bench/fanout/generator.ts`) runs as separate processes driving real WebSocket clients. Movers send their position at 10 Hz with `z` = send time (ms since an epoch shared with the runner). ' +
    'Five observers (also movers, in a process of their own so that they are read as soon as their frames arrive) parse every frame and take `now − z` for each new value from another user; every other client only counts frames and bytes (a minimal RFC 6455 client that neither copies nor decodes). ' +
    'With `shoal-compact`, z arrives as a 32-bit float: the movers send it already rounded to one, so the observers decode exactly the value sent, within 1/64 ms of the send time in runs shorter than about 4 minutes.',
    '- Latency percentiles are over all (observer, update) pairs of the window (warm-up 3 s, window 10 s). Delivery is the share of updates whose value, or a newer one from the same sender, reached each observer within 1 s; the load continues for that second after the window.',
    '- Server CPU is utime+stime from /proc/<pid>/stat over the window, as a share of one core; RSS is read at the end of the window, and RSS/conn is (that RSS − the RSS before the first connection) / N: a per-connection figure in `idle`, while under traffic it mostly shows buffers and garbage-collection timing (it can even come out negative). Frames/s and bytes/s are WebSocket payloads (text and binary) received by all clients. The generator\'s own CPU is reported, and flagged as saturated above 85% of its core: then the figures may show the generator, not the server.',
    '- Capacity: the largest N with p99 < 100 ms and delivery ≥ 0.99. The sweep grows N ×1.5 from its start, stops a target at its first failing N and bisects once between the last pass and that failure.',
    '- On loopback the kernel work of receiving a frame costs the generator about as much as sending it costs the server, so near the baselines\' limit the generator is close to saturation too; its CPU column says when that is the case.',
    '')

  const capacityLines: string[] = []
  const commands = new Set<string>()
  for (const scenario of SCENARIOS) {
    const selections = TARGETS.map((target) => ({ target, ...select(scenario, target, runs, sweeps) }))
    const chosen = selections.flatMap((selection) => selection.runs)
    if (chosen.length === 0) continue
    for (const selection of selections) {
      if (selection.sweep !== null) commands.add(selection.sweep.command)
      for (const run of selection.runs) if (run.sweep === null) commands.add(run.command)
      const cap = selection.capacity
      if (cap !== null) {
        capacityLines.push(`| ${scenario} | ${selection.target} | ${cap.capacity === null ? `below the sweep's first N (${selection.runs[0]?.users ?? '?'})` : String(cap.capacity)} | ${cap.firstFail ?? dash} | ${escape(cap.limitedBy || dash)} |`)
      }
    }
    out.push(`## ${scenario}`, '', scenarioText[scenario], '')
    const svg = await chart(scenario, chosen)
    if (svg !== null) out.push(`![${scenario}: p99 latency and server CPU against N](${svg})`, '')
    out.push(table(scenario, chosen), '')
  }
  const clusterRecords = latestClusters(clusters)
  if (clusterRecords.length > 0) {
    for (const record of clusterRecords) commands.add(record.command)
    out.push('## cluster', '', clusterText, '', clusterTable(clusterRecords), '')
  }
  if (capacityLines.length > 0) {
    out.splice(out.indexOf('## How it measures'), 0,
      '## Capacities found', '',
      '| scenario | target | capacity (largest passing N) | first failing N | why it failed |',
      '|---|---|---|---|---|',
      ...capacityLines, '')
  }
  out.push('## Commands', '',
    'Every figure above comes from these commands (results in `bench/results/`, git-ignored), then `npm run bench:report`:', '',
    '```sh',
    'npx tsc -p tsconfig.build.json   # the runner also builds Shoal before its first run',
    ...[...commands].sort(),
    'npm run bench:report',
    '```', '',
    'One run of any scenario: `npm run bench -- <room|crowd|idle|churn> --target shoal|shoal-compact|naive|socketio --users N [--seconds S]`; ' +
    'Shoal on two nodes sharing Redis, after one node at the same N: `npm run bench -- cluster --users N [--seconds S] [--redis-url URL]`; ' +
    '`npm run bench` alone prints every option. The older single-scenario bench (CPU per 1,000 updates) is `npm run bench -- update-cpu`.', '')
  writeFileSync(join(DOCS, 'performance.md'), out.join('\n') + keptSection(join(DOCS, 'performance.md')))
  process.stdout.write(`wrote ${join(DOCS, 'performance.md')} (${runs.length} runs, ${sweeps.length} sweeps, ${clusters.length} cluster runs read)\n`)
}

/** Marks the hand-written end of performance.md (figures before and after a change), which a new report keeps. */
const KEPT_MARKER = '<!-- Kept by bench:report: the figures of each change, before and after, written by hand below. -->'

/** The hand-written section of the current file, from its marker on; the marker alone when there is none yet. */
function keptSection (file: string): string {
  let current = ''
  try {
    current = readFileSync(file, 'utf8')
  } catch {
    // No report yet: start the section.
  }
  const at = current.indexOf(KEPT_MARKER)
  return `\n${at < 0 ? `${KEPT_MARKER}\n` : current.slice(at)}`
}

await main()
