import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ReadtrailError } from '../common/errors.js'

/** The repository root: the nearest folder above this file holding scripts/kafka.sh. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'scripts', 'kafka.sh'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('cannot find scripts/kafka.sh above ' + fileURLToPath(import.meta.url))
    dir = parent
  }
  return dir
}

/**
 * Starts (or reuses) the project's single-node Kafka broker, fetched from
 * Maven Central by scripts/kafka.sh, and returns its address.
 */
export function startLocalKafka(): string {
  try {
    const out = execFileSync('bash', [join(repoRoot(), 'scripts', 'kafka.sh'), 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    const match = /kafka: (\S+)/.exec(out)
    if (!match) throw new Error(`unexpected output from scripts/kafka.sh: ${out}`)
    return match[1]!
  } catch (cause) {
    throw new ReadtrailError('KAFKA_UNAVAILABLE', `could not start the local Kafka broker: ${(cause as Error).message}`, { cause })
  }
}
