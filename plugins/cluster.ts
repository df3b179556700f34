/**
 * Cluster membership over a bus (the `bus` option), routed by room: this node's
 * users go out once per tick on their rooms' topics, the users of other nodes in
 * the rooms it serves come in as replicas, dead nodes are noticed by their
 * missing heartbeats. Without a bus the instance is a single node and this
 * decorates null.
 */
import fp from 'fastify-plugin'
import { ClusterSync } from '../src/core/cluster/cluster.js'
import { quietLog } from './config.js'

declare module 'fastify' {
  interface FastifyInstance {
    shoalCluster: ClusterSync | null
  }
}

export default fp(async function cluster (app) {
  const { shoalConfig: config } = app
  const bus = config.bus
  if (bus === undefined) {
    app.decorate('shoalCluster', null)
    return
  }
  const sync = new ClusterSync(app.shoalUsers, app.shoalBroadcast, bus, config.clock, {
    graceMs: config.graceMs,
    heartbeatMs: config.nodeHeartbeatMs,
    claimTimeoutMs: config.claimTimeoutMs
  })
  const log = quietLog(app)
  sync.on('invalid', (reason) => {
    app.shoalMetrics.invalidFromCluster()
    log.warn({ reason }, 'ignored an invalid cluster message')
  })
  sync.on('failed', (operation, err) => { log.warn({ err, operation }, 'cluster bus operation failed') })
  sync.on('status', (status) => {
    if (status === 'ok') app.log.info({ node: bus.nodeId }, 'cluster bus reachable: resyncing')
    else app.log.warn({ node: bus.nodeId }, 'cluster bus unreachable: serving local users only')
  })
  app.decorate('shoalCluster', sync)
  const metrics = app.shoalMetrics
  metrics.gauge('shoal_cluster_bus_up', 'In a cluster: 1 while this node reaches the bus (Redis), 0 while it serves its own users only.', () => sync.status === 'ok' ? 1 : 0)
  metrics.gauge('shoal_cluster_nodes', 'In a cluster: nodes alive at this node\'s last heartbeat, itself included.', () => sync.peers.size + 1)
  metrics.gauge('shoal_cluster_rooms', 'In a cluster: rooms this node serves (has users in, and is subscribed to).', () => sync.roomCount)
  metrics.gauge('shoal_cluster_replicas', 'In a cluster: users of other nodes held here (those in the rooms this node serves).', () => sync.replicaCount())
  metrics.counter('shoal_cluster_bus_received_messages_total', 'In a cluster: messages this node received from the bus.', () => sync.traffic.receivedMessages)
  metrics.counter('shoal_cluster_bus_received_bytes_total', 'In a cluster: bytes of the messages this node received from the bus.', () => sync.traffic.receivedBytes)
  metrics.counter('shoal_cluster_bus_published_messages_total', 'In a cluster: messages this node published on the bus.', () => sync.traffic.publishedMessages)
  metrics.counter('shoal_cluster_bus_published_bytes_total', 'In a cluster: bytes of the messages this node published on the bus.', () => sync.traffic.publishedBytes)
  app.shoalTicker.add('publish', 'cluster-publish', () => sync.publishTick())
  app.shoalTicker.add('publish', 'cluster-orphans', () => sync.expireOrphans())

  let beatTimer: NodeJS.Timeout | undefined
  app.addHook('onReady', async () => {
    await sync.start()
    beatTimer = setInterval(() => {
      // While the bus is known to be away, a failed beat is expected: the status change was logged.
      sync.beat().catch((err: unknown) => { log[sync.status === 'ok' ? 'warn' : 'debug']({ err }, 'cluster heartbeat failed') })
    }, config.nodeHeartbeatMs)
  })
  app.addHook('onClose', async () => {
    clearInterval(beatTimer)
    sync.close()
  })
}, { name: 'shoal-cluster', fastify: '5.x', dependencies: ['shoal-config', 'shoal-metrics', 'shoal-user-store', 'shoal-broadcast', 'shoal-ticker'] })
