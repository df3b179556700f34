/**
 * Where a Redis is: one server (`REDIS_URL`) or a Redis Cluster from its seed
 * nodes (`REDIS_CLUSTER_NODES`). Apart from the client (redis-connection.ts), so
 * that reading the environment needs no ioredis, even for its types.
 */
export interface ClusterSeed { host: string, port: number }

export type RedisTarget = { url: string } | { clusterNodes: readonly ClusterSeed[] }

export const isClusterTarget = (target: RedisTarget): target is { clusterNodes: readonly ClusterSeed[] } => 'clusterNodes' in target
