import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger } from '../../common/logger.js'
import { openOutbox } from '../../producers/outbox/index.js'

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
const BATCH = 40

/** The bytes the child writes as message `i` of batch `b`; the parent recomputes them to compare. */
function expected(b: number, i: number): { key: Buffer | null; value: Buffer } {
  return { key: i % 4 === 0 ? null : Buffer.from(`k${b}.${i}`), value: Buffer.from(`batch ${b} message ${i} `.padEnd(500, String.fromCharCode(97 + ((b + i) % 26)))) }
}

// Four concurrent writers, so group commits carry several appends. A line
// is printed only after append resolved; stdout to a pipe is synchronous on
// Linux, so every line the parent sees was reported durable before the kill.
const CHILD = `
const { openOutbox } = await import(process.env.OUTBOX_MODULE)
${expected.toString()}
const outbox = await openOutbox({ dir: process.env.OUTBOX_DIR, segmentBytes: 64 * 1024 })
let next = 0
async function writer() {
  for (;;) {
    const b = next++
    const r = await outbox.append(Array.from({ length: ${BATCH} }, (_, i) => expected(b, i)))
    process.stdout.write(b + ' ' + r.first + ' ' + r.last + '\\n')
  }
}
await Promise.all([writer(), writer(), writer(), writer()])
`

describe('outbox durability', () => {
  const dirs: string[] = []
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })))

  it('keeps every append a SIGKILLed process saw resolve, byte for byte', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rt-outbox-crash-'))
    dirs.push(dir)
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], {
      cwd: repoRoot,
      env: { ...process.env, OUTBOX_DIR: dir, OUTBOX_MODULE: pathToFileURL(join(repoRoot, 'producers/outbox/index.ts')).href, READTRAIL_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let errText = ''
    child.stderr.on('data', (d: Buffer) => (errText += d.toString()))
    const exit = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)))
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString()
        if (out.split('\n').length > 60) resolve()
      })
      void exit.then((how) => reject(new Error(`child exited (${String(how)}) before appending: ${errText}`)))
    })
    child.kill('SIGKILL')
    expect(await exit).toBe('SIGKILL')

    const lines = out.split('\n').slice(0, -1)
    const reported = lines.map((line) => {
      const [b, first, last] = line.split(' ')
      return { b: Number(b), first: BigInt(first!), last: BigInt(last!) }
    })
    expect(reported.length).toBeGreaterThanOrEqual(60)
    // The lock names the dead child: taking it over is part of restarting.
    const outbox = await openOutbox({ dir, segmentBytes: 64 * 1024 }, { logger: createLogger({ level: 'silent' }) })
    try {
      expect(outbox.stats().lostMessages).toBe(0)
      for (const { b, first, last } of reported) {
        expect(last - first).toBe(BigInt(BATCH - 1))
        const read = await outbox.read(first, BATCH, Number.MAX_SAFE_INTEGER)
        expect(read.map((m) => m.position)).toEqual(Array.from({ length: BATCH }, (_, i) => first + BigInt(i)))
        read.forEach((m, i) => {
          const want = expected(b, i)
          expect(m.key === null ? null : Buffer.from(m.key)).toEqual(want.key)
          expect(Buffer.from(m.value)).toEqual(want.value)
        })
      }
      const highest = reported.reduce((max, r) => (r.last > max ? r.last : max), 0n)
      expect(outbox.end()).toBeGreaterThan(highest)
      const { first } = await outbox.append([expected(0, 0)])
      expect(first).toBe(outbox.end() - 1n)
    } finally {
      await outbox.close()
    }
  }, 60_000)
})
