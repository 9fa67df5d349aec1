import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { deferCleanup } from './cleanup.js'

const run = promisify(execFile)
const REPO = fileURLToPath(new URL('../../', import.meta.url))
const SCRIPT = join(REPO, 'scripts', 'kafka.sh')

export interface PrivateBroker {
  readonly brokers: string[]
  /** Starts (or restarts) the broker process on its data directory and waits until it answers. */
  start(): Promise<void>
  /** Stops the broker process for real (SIGTERM, as an operator or an outage would). */
  stop(): Promise<void>
}

/**
 * A second, private Kafka broker (scripts/kafka.sh on its own port and data
 * directory) that a test may stop and start without disturbing the shared
 * broker every other test file uses. It shares the shared broker's jars, and
 * is stopped and deleted when the file's tests end.
 */
export async function startPrivateBroker(port = 19192): Promise<PrivateBroker> {
  const home = join(REPO, '.cache', `kafka-private-${port}`)
  // A broker an interrupted run left behind still owns the port: stop it first.
  if (existsSync(join(home, 'kafka.pid'))) {
    await run('bash', [SCRIPT, 'stop'], { env: { ...process.env, READTRAIL_KAFKA_PORT: String(port), READTRAIL_KAFKA_HOME: home }, timeout: 60_000 }).catch(() => {})
  }
  rmSync(home, { recursive: true, force: true })
  mkdirSync(home, { recursive: true })
  const sharedLibs = join(REPO, '.cache', 'kafka', 'libs')
  if (existsSync(sharedLibs)) symlinkSync(sharedLibs, join(home, 'libs'))
  const env = { ...process.env, READTRAIL_KAFKA_PORT: String(port), READTRAIL_KAFKA_HOME: home, READTRAIL_KAFKA_HEAP_OPTS: '-Xms128m -Xmx384m' }
  const script = async (command: string) => {
    await run('bash', [SCRIPT, command], { env, timeout: 180_000 })
  }
  const broker: PrivateBroker = {
    brokers: [`127.0.0.1:${port}`],
    start: () => script('start'),
    stop: () => script('stop'),
  }
  deferCleanup(async () => {
    await script('stop').catch(() => {})
    rmSync(home, { recursive: true, force: true })
  })
  await broker.start()
  return broker
}
