import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TEST_BROKERS, testKafka } from '../helpers/kafka.js'

/**
 * docker-compose.yml's consumer once ran a bare `consume` with no key and no
 * volume, so under Docker it would have restart-looped on
 * CHECKPOINT_KEY_MISSING. There is no Docker engine here, so this runs the
 * key step's and the consumer's exact commands and environment from the
 * normalized compose file (`docker-compose config`), with only the addresses
 * rewritten (the local broker, the embedded engine for the ClickHouse
 * server, a temporary directory for the volumes) and a fresh topic and group
 * so it shares the broker with other tests.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** Where the image keeps READTRAIL_HOME (Dockerfile) and the compose volumes are mounted. */
const IMAGE_HOME = '/var/lib/readtrail'

interface ComposeService {
  command?: string[] | string
  environment?: Record<string, string | number | null>
  volumes?: string[]
  depends_on?: Record<string, { condition: string }>
  healthcheck?: { test: string[] | string }
  restart?: string
}

interface ComposeFile {
  services: Record<string, ComposeService>
  volumes?: Record<string, unknown>
}

/** The file as Compose sees it (anchors merged, variables interpolated), as JSON through Python's yaml, which docker-compose itself depends on. */
function loadComposeFile(): ComposeFile {
  const yaml = execFileSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '' } })
  const json = execFileSync('python3', ['-c', 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], { input: yaml, encoding: 'utf8' })
  return JSON.parse(json) as ComposeFile
}

function hasDockerCompose(): boolean {
  return spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0
}

function serviceOf(compose: ComposeFile, name: string): ComposeService {
  const service = compose.services[name]
  if (!service) throw new Error(`docker-compose.yml has no service ${name}`)
  return service
}

/** Compose's `$$` is a literal `$` for the container's shell. */
function commandOf(service: ComposeService): string[] {
  const command = service.command
  if (!Array.isArray(command)) throw new Error(`expected an exec-form command, got ${JSON.stringify(command)}`)
  return command.map((part) => part.replaceAll('$$', '$'))
}

/**
 * The service's environment with the addresses of this machine: the local
 * broker, no ClickHouse URL (the embedded engine), `home` for the image's
 * state paths; and a fresh topic and group. Nothing else from this process's
 * environment but PATH, so a variable the compose file forgot is missed here too.
 */
function localEnvironment(service: ComposeService, home: string, names: { topic: string; group: string }): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '', READTRAIL_LOG_LEVEL: 'info' }
  for (const [key, value] of Object.entries(service.environment ?? {})) {
    if (value === null) continue
    const text = String(value)
    if (key === 'READTRAIL_CLICKHOUSE_URL') continue
    env[key] = key === 'READTRAIL_KAFKA_BROKERS' ? TEST_BROKERS.join(',') : text.startsWith(IMAGE_HOME) ? home + text.slice(IMAGE_HOME.length) : text
  }
  env['READTRAIL_TOPIC'] = names.topic
  env['READTRAIL_GROUP_ID'] = names.group
  return env
}

function run(command: string[], env: Record<string, string>): { code: number | null; stdout: string; stderr: string } {
  const [file, ...args] = command
  const result = spawnSync(file!, args, { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

/** The container paths a service mounts volumes on. */
function mountsOf(service: ComposeService): string[] {
  return (service.volumes ?? []).map((v) => v.split(':')[1] ?? '')
}

describe.runIf(hasDockerCompose())('docker-compose.yml commands', () => {
  let compose: ComposeFile
  let home: string
  const names = { topic: `rt-compose-${randomUUID().slice(0, 8)}`, group: `rt-compose-${randomUUID().slice(0, 8)}` }

  beforeAll(() => {
    compose = loadComposeFile()
    home = mkdtempSync(join(tmpdir(), 'readtrail-compose-'))
  })

  afterAll(async () => {
    rmSync(home, { recursive: true, force: true })
    const admin = testKafka().admin()
    await admin.connect()
    await admin.deleteTopics({ topics: [names.topic, `${names.topic}.dlq`, `${names.topic}.checkpoints`] }).catch(() => {})
    await admin.deleteGroups([names.group]).catch(() => {})
    await admin.disconnect()
  })

  it('keeps the state on volumes, makes the key first, and starts the consumer only when its services are ready', () => {
    const keys = serviceOf(compose, 'keys')
    const consumer = serviceOf(compose, 'consumer')
    expect(consumer.depends_on).toMatchObject({
      keys: { condition: 'service_completed_successfully' },
      kafka: { condition: 'service_healthy' },
      clickhouse: { condition: 'service_healthy' },
    })
    expect(keys.restart).toBe('no')
    expect(consumer.healthcheck?.test).toBeDefined()
    const keyDir = String(consumer.environment?.['READTRAIL_CHECKPOINT_KEY']).replace(/\/[^/]+$/, '')
    expect(consumer.environment?.['READTRAIL_HOME']).toBe(IMAGE_HOME)
    expect(mountsOf(consumer)).toEqual(expect.arrayContaining([IMAGE_HOME, keyDir]))
    expect(mountsOf(keys)).toContain(keyDir)
    // Every named volume is declared, so `down` without -v keeps the state.
    for (const volume of [...(consumer.volumes ?? []), ...(keys.volumes ?? [])]) expect(Object.keys(compose.volumes ?? {})).toContain(volume.split(':')[0])
  })

  it('builds an image that runs as an unprivileged user with a private home', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
    const users = [...dockerfile.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1])
    expect(users.at(-1)).toBeDefined()
    expect(users.at(-1)).not.toMatch(/^(root|0)$/)
    expect(dockerfile).toMatch(new RegExp(`chmod 700 ${IMAGE_HOME}`))
  })

  it('generates the key once, keeps it on the next start, and runs the consumer until SIGTERM without a restart', async () => {
    const keys = serviceOf(compose, 'keys')
    const consumer = serviceOf(compose, 'consumer')
    const keyEnv = localEnvironment(keys, home, names)
    const first = run(commandOf(keys), keyEnv)
    expect(first.stderr).toBe('')
    expect(first.code).toBe(0)
    const keyPath = keyEnv['READTRAIL_CHECKPOINT_KEY']!
    const key = readFileSync(keyPath, 'utf8')
    expect(statSync(keyPath).mode & 0o077).toBe(0)

    // A second `up` (or a key mounted by the operator) must not fail the step, nor replace the key.
    const second = run(commandOf(keys), keyEnv)
    expect(second.code).toBe(0)
    expect(readFileSync(keyPath, 'utf8')).toBe(key)

    const env = localEnvironment(consumer, home, names)
    const [file, ...args] = commandOf(consumer)
    const child = spawn(file!, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c))
    child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    try {
      const started = await Promise.race([
        (async () => {
          for (let i = 0; i < 120; i++) {
            if (output.includes('chain writer started')) return true
            await new Promise((r) => setTimeout(r, 500))
          }
          return false
        })(),
        exited.then(() => false),
      ])
      expect(started, output).toBe(true)

      // Still up a few seconds later: no crash right after start.
      await new Promise((r) => setTimeout(r, 5000))
      expect(child.exitCode, output).toBeNull()

      // The compose health check, run the same way, says healthy once the writer joined its group.
      const [form, ...check] = [consumer.healthcheck?.test ?? []].flat()
      expect(form).toBe('CMD')
      const health = commandOf({ command: check })
      let healthy = run(health, env)
      for (let i = 0; i < 20 && healthy.code !== 0; i++) {
        await new Promise((r) => setTimeout(r, 1000))
        healthy = run(health, env)
      }
      expect(healthy.code, `${healthy.stdout}${healthy.stderr}`).toBe(0)

      child.kill('SIGTERM')
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000))])
      expect(code, output).toBe(0)
      expect(output).toContain('chain writer stopped')
      // And unhealthy once it left: the check does not pass on a group alone.
      expect(run(health, env).code).not.toBe(0)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  })
})
