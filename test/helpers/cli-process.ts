import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll } from 'vitest'
import { generateKeyFiles } from '../../checkpoints/keys.js'
import { TEST_TRUSTED_PRODUCERS } from './producer-trust.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

let home: string | undefined

/**
 * READTRAIL_HOME for CLI processes of this test file: a temporary directory
 * holding a checkpoint signing key (so `consume` can sign and `verify` can
 * check), the checkpoint log and the verify state. Removed after the file.
 */
export function testHome(): string {
  if (!home) {
    const dir = mkdtempSync(join(tmpdir(), 'readtrail-home-'))
    generateKeyFiles(join(dir, 'keys', 'checkpoint.key'))
    home = dir
    afterAll(() => rmSync(dir, { recursive: true, force: true }))
  }
  return home
}

export interface CliProcess {
  child: ChildProcess
  /** Everything the process wrote to stderr (pino JSON lines) so far. */
  output(): string
  /** Resolves when a stderr line matches. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * The environment every CLI process of a test starts from: its READTRAIL_HOME,
 * and the trusted-producers file holding every test service's key, so
 * `readtrail consume` stores what test producers sign and nothing unsigned.
 */
function cliEnv(logLevel: string, env: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, READTRAIL_LOG_LEVEL: logLevel, READTRAIL_HOME: testHome(), READTRAIL_TRUSTED_PRODUCERS: TEST_TRUSTED_PRODUCERS, ...env }
}

/** Runs the compiled `readtrail <args>` in a separate process (its own chDB owner). */
export function spawnCli(args: string[], env: Record<string, string>): CliProcess {
  const child = spawn(process.execPath, ['dist/cli/main.js', ...args], {
    cwd: ROOT,
    env: cliEnv('info', env),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = []
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
    for (const w of [...waiters]) {
      const line = stderr.split('\n').find((l) => w.pattern.test(l))
      if (line) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(line)
      }
    }
  })
  child.stdout!.resume()
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  return {
    child,
    output: () => stderr,
    exited,
    waitFor(pattern, timeoutMs = 60_000) {
      const line = stderr.split('\n').find((l) => pattern.test(l))
      if (line) return Promise.resolve(line)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern} in:\n${stderr.slice(-4000)}`)), timeoutMs)
        waiters.push({ pattern, resolve: (l) => (clearTimeout(timer), resolve(l)) })
        void exited.then(({ code, signal }) => reject(new Error(`process exited (${code ?? signal}) before ${pattern}:\n${stderr.slice(-4000)}`)))
      })
    },
  }
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `readtrail <args>` to completion. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['dist/cli/main.js', ...args], {
      cwd: ROOT,
      env: cliEnv('warn', env),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c))
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c))
    child.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
}
