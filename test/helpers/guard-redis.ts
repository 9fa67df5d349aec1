import { execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll } from 'vitest'

const SCRIPT = fileURLToPath(new URL('../../scripts/redis.sh', import.meta.url))

/** The machine's Redis (shared: never stopped by a test). */
export const SHARED_REDIS_URL = process.env['READTRAIL_REDIS_URL'] ?? 'redis://127.0.0.1:6379'

/** A key prefix no other test run uses, so tests on the shared Redis never see each other's counters. */
export function freshGuardPrefix(): string {
  return `rt-test:${randomUUID().slice(0, 8)}:`
}

export interface PrivateRedis {
  url: string
  port: number
  start(): void
  stop(): void
}

/**
 * A private redis-server (scripts/redis.sh) on its own port, which a test
 * may stop and start; started before the suite's tests, stopped after them. Each test file
 * passes its own port so files running at once do not stop each other's.
 */
export function privateRedis(port: number): PrivateRedis {
  const run = (command: 'start' | 'stop') =>
    execFileSync('bash', [SCRIPT, command], { env: { ...process.env, READTRAIL_REDIS_PORT: String(port) }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  const redis: PrivateRedis = { url: `redis://127.0.0.1:${port}`, port, start: () => void run('start'), stop: () => void run('stop') }
  // Started in a hook, not when the file is collected: a suite whose tests are all filtered out runs neither hook, and must not leave a server behind.
  beforeAll(() => redis.start())
  afterAll(() => redis.stop())
  return redis
}
