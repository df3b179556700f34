/**
 * The monitoring docs against the server they describe: every metric that
 * docs/grafana-dashboard.json and docs/prometheus-alerts.yml query is one an
 * instance in a cluster really exports, every dashboard query follows the
 * instance picker and parses as PromQL, and the alert rules pass promtool's
 * check and their own unit tests (each alert shown firing and staying quiet).
 *
 * promtool comes from $PROMTOOL, PATH or where .ci/run unpacks it. Without it the promtool checks skip,
 * except under CI=true, where they fail: CI must never pass by skipping.
 */
import { spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse } from 'yaml'
import shoal, { MemoryClusterHub } from '../../index.js'
import { systemClock } from '../../src/core/clock.js'
import { FAST, testApp } from '../helpers.js'

const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url))
const DASHBOARD = join(DOCS, 'grafana-dashboard.json')
const ALERTS = join(DOCS, 'prometheus-alerts.yml')
const ALERT_TESTS = join(DOCS, 'prometheus-alerts.test.yml')

interface Query { where: string, expr: string }
interface Panel { title?: string, targets?: Array<{ expr?: string }>, panels?: Panel[] }
interface Dashboard { panels?: Panel[], templating?: { list?: Array<{ name?: string, definition?: string }> } }
interface Rule { alert?: string, record?: string, expr?: string, for?: string, labels?: Record<string, string>, annotations?: Record<string, string> }
interface RuleFile { groups?: Array<{ name?: string, rules?: Rule[] }> }
interface RuleTests { tests?: Array<{ alert_rule_test?: Array<{ alertname?: string, exp_alerts?: unknown[] }> }> }

/** Every target expression of a dashboard, with its panel's title (a collapsed row holds its panels inside). */
function dashboardQueries (dashboard: Dashboard): Query[] {
  const queries: Query[] = []
  const walk = (panels: Panel[]): void => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) {
        if (target.expr !== undefined) queries.push({ where: `panel "${panel.title ?? '?'}"`, expr: target.expr })
      }
      walk(panel.panels ?? [])
    }
  }
  walk(dashboard.panels ?? [])
  return queries
}

function rulesOf (file: RuleFile): Rule[] {
  return (file.groups ?? []).flatMap((group) => group.rules ?? [])
}

/**
 * The series names a /metrics text exports: every metric of a `# TYPE` line (so
 * labelled counters count before their first sample), plus the `_bucket`, `_sum`
 * and `_count` series of a histogram, which has no series under its own name.
 */
function exportedSeries (text: string): Set<string> {
  const names = new Set<string>()
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name = '', type] = match
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix)
    else if (type === 'summary') for (const suffix of ['', '_sum', '_count']) names.add(name + suffix)
    else names.add(name)
  }
  return names
}

/** The Shoal metric names an expression uses. */
function metricNames (expr: string): string[] {
  return [...new Set(expr.match(/\bshoal_\w+/g) ?? [])]
}

/** Shoal metric names an expression uses that the server does not export. */
function unknownMetrics (expr: string, exported: Set<string>): string[] {
  return metricNames(expr).filter((name) => !exported.has(name))
}

/** Selectors of Shoal metrics in an expression that the dashboard's instance picker does not narrow. */
function unfilteredSelectors (expr: string): string[] {
  return [...expr.matchAll(/\b(shoal_\w+)(\{[^}]*\})?/g)]
    .filter(([, , matchers]) => matchers?.includes('instance=~"$instance"') !== true)
    .map(([selector]) => selector)
}

/** A dashboard query as plain PromQL: Grafana's variables replaced by what they stand for. */
function asPromQL (expr: string): string {
  return expr.replaceAll('$__rate_interval', '5m').replaceAll('$instance', '.*')
}

function findPromtool (): string | null {
  // Where .ci/run unpacks it, so that `npm test` after a CI run on this machine runs the checks too.
  for (const candidate of [process.env.PROMTOOL, 'promtool', '/opt/shoal-ci/prometheus/usr/bin/promtool']) {
    if (candidate === undefined || candidate === '') continue
    if (spawnSync(candidate, ['--version'], { stdio: 'ignore' }).status === 0) return candidate
  }
  return null
}

interface Run { status: number | null, output: string }

function run (command: string, args: string[]): Run {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 30_000 })
  return { status: result.status, output: `${result.stdout}${result.stderr}${result.error === undefined ? '' : String(result.error)}` }
}

/** `promtool check rules` on a rule file of one recording rule per expression: promtool's PromQL parser on each. */
async function checkPromQL (promtool: string, queries: Query[]): Promise<Run> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-promql-'))
  try {
    const file = join(dir, 'queries.yml')
    const rules = queries.map(({ expr }, i) => ({ record: `shoal_docs:query_${i}`, expr }))
    // JSON is YAML: no serialiser needed.
    await writeFile(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }))
    return run(promtool, ['check', 'rules', file])
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** /metrics of a real instance with a cluster bus, so the cluster metrics are there too. */
async function scrape (): Promise<string> {
  const hub = new MemoryClusterHub(systemClock)
  const app = testApp()
  try {
    await app.register(shoal, { ...FAST, demo: false, bus: hub.bus('node-a') })
    const res = await app.inject({ method: 'GET', url: '/metrics' })
    if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`)
    return res.body
  } finally {
    await app.close()
  }
}

const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard
const dashboardQueriesList = dashboardQueries(dashboard)
// Variable queries (label_values(...)) are Grafana's, not PromQL: checked for their metric names only.
const variableQueries: Query[] = (dashboard.templating?.list ?? [])
  .filter((variable) => variable.definition?.includes('shoal_') === true)
  .map((variable) => ({ where: `variable $${variable.name ?? '?'}`, expr: variable.definition ?? '' }))
const alertRules = rulesOf(parse(await readFile(ALERTS, 'utf8')) as RuleFile)
const alertQueries: Query[] = alertRules.map((rule) => ({ where: `rule ${rule.alert ?? rule.record ?? '?'}`, expr: rule.expr ?? '' }))
const exported = exportedSeries(await scrape())

t.test('the docs query only metrics the server exports', async (t) => {
  t.ok(dashboardQueriesList.length >= 20, `the dashboard has its queries (${dashboardQueriesList.length})`)
  t.ok(alertQueries.length >= 4, `the alert file has its rules (${alertQueries.length})`)
  t.ok(variableQueries.length >= 1, 'the instance picker queries a Shoal metric')
  for (const { where, expr } of [...dashboardQueriesList, ...variableQueries, ...alertQueries]) {
    t.ok(metricNames(expr).length > 0, `${where} queries a Shoal metric`, { expr })
    t.same(unknownMetrics(expr, exported), [], `${where}: every metric is exported`, { expr })
  }
})

t.test('the check catches a metric the server does not export', async (t) => {
  t.ok(exported.has('shoal_tick_duration_seconds_bucket') && exported.has('shoal_cluster_bus_up'), 'the scrape has the histogram and cluster metrics')
  t.same(unknownMetrics('sum by (type) (rate(shoal_mesages_in_total[5m]))', exported), ['shoal_mesages_in_total'], 'a misspelt name')
  t.same(unknownMetrics('rate(shoal_tick_duration_seconds[5m])', exported), ['shoal_tick_duration_seconds'], 'a histogram by its bare name, which has no series')
})

t.test('every dashboard query follows the instance picker', async (t) => {
  for (const { where, expr } of dashboardQueriesList) {
    t.same(unfilteredSelectors(expr), [], `${where}: every selector has instance=~"$instance"`, { expr })
  }
  t.same(unfilteredSelectors('sum(shoal_connections) + shoal_rooms{job="x"}'), ['shoal_connections', 'shoal_rooms{job="x"}'], 'and the check sees a selector without it')
})

t.test('every alert is routable and explained', async (t) => {
  for (const rule of alertRules) {
    const name = rule.alert ?? '?'
    t.ok(rule.alert !== undefined, `${name} is an alerting rule`)
    t.match(rule.labels?.severity, /^(critical|warning)$/, `${name} has a severity`)
    t.match(rule.for, /^\d+[smh]$/, `${name} has a for: duration`)
    t.ok((rule.annotations?.summary ?? '') !== '' && (rule.annotations?.description ?? '') !== '', `${name} has a summary and a description`)
  }
})

t.test('every alert has a unit test that fires it and one where it stays quiet', async (t) => {
  const cases = ((parse(await readFile(ALERT_TESTS, 'utf8')) as RuleTests).tests ?? []).flatMap((test) => test.alert_rule_test ?? [])
  for (const rule of alertRules) {
    const own = cases.filter((c) => c.alertname === rule.alert)
    t.ok(own.some((c) => (c.exp_alerts ?? []).length > 0), `${rule.alert ?? '?'} is tested firing`)
    t.ok(own.some((c) => (c.exp_alerts ?? []).length === 0), `${rule.alert ?? '?'} is tested quiet`)
  }
})

const promtool = findPromtool()
const underCI = process.env.CI === 'true'
const missing = 'promtool is neither at $PROMTOOL, on PATH nor in /opt/shoal-ci/prometheus (.ci/run unpacks it there from Debian\'s prometheus package)'

t.test('promtool', { skip: promtool === null && !underCI ? missing : false }, async (t) => {
  if (promtool === null) {
    t.fail(`${missing}; under CI=true the promtool checks must run`)
    return
  }

  t.test('check rules docs/prometheus-alerts.yml', async (t) => {
    const result = run(promtool, ['check', 'rules', ALERTS])
    t.equal(result.status, 0, 'the alert rules are valid', { output: result.output })
  })

  t.test('test rules docs/prometheus-alerts.test.yml', async (t) => {
    const result = run(promtool, ['test', 'rules', ALERT_TESTS])
    t.equal(result.status, 0, 'every alert fires where its condition holds and only there', { output: result.output })
  })

  t.test('every dashboard query parses as PromQL', async (t) => {
    const result = await checkPromQL(promtool, dashboardQueriesList.map(({ where, expr }) => ({ where, expr: asPromQL(expr) })))
    t.equal(result.status, 0, `${dashboardQueriesList.length} queries parse`, { output: result.output })
    const broken = await checkPromQL(promtool, [{ where: 'broken', expr: 'sum(rate(shoal_connections[5m])' }])
    t.not(broken.status, 0, 'and the check rejects one that does not')
  })
})
