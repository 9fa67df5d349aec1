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

/**
 * The demo's broker: `--brokers`, else READTRAIL_KAFKA_BROKERS, else the
 * project's own broker, started here. A broker given either way turns the
 * demo's own off; `say` tells so in one line, so a variable left over in the
 * shell does not silently send the demo elsewhere.
 */
export function demoBrokers(flag: string | undefined, env: NodeJS.ProcessEnv, say: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): string {
  const fromEnv = env['READTRAIL_KAFKA_BROKERS'] || undefined
  const given = flag ?? fromEnv
  if (given === undefined) return startLocalKafka()
  const source = flag !== undefined ? '--brokers' : 'READTRAIL_KAFKA_BROKERS'
  say(`demo: using the Kafka broker at ${given} from ${source}, not starting the demo's own (${flag !== undefined ? 'leave out --brokers' : 'unset READTRAIL_KAFKA_BROKERS'} to let the demo start one)`)
  return given
}
