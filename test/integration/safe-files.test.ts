import { execFileSync } from 'node:child_process'
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, type CliResult } from '../helpers/cli-process.js'

/**
 * Issue 11: files readtrail writes and reads on an operator's say-so. Each
 * run here is the real CLI process. Every refusal must come before any
 * store, broker or query is touched, which these runs show by pointing the
 * store and the broker at nothing: had the command got that far, it would
 * fail with another code, or hang on the broker.
 */
const work = mkdtempSync(join(tmpdir(), 'rt-safe-files-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

const nowhere = join(work, 'no-store-here')
/** No store, no broker: only a refusal made before either is reached can end these runs quickly. */
const env = { READTRAIL_KAFKA_BROKERS: '127.0.0.1:1' }
const breach = ['report', 'breach-scope', '--param', 'principals=clerk.test', '--param', 'from=2026-01-01', '--param', 'to=2026-01-02', '--data-dir', nowhere]
const EVENT = '01890000-0000-7000-8000-000000000001'

async function timed(args: string[]): Promise<CliResult & { ms: number }> {
  const started = Date.now()
  const r = await runCli(args, env)
  return { ...r, ms: Date.now() - started }
}

function expectCode(r: CliResult, code: string): void {
  expect(r.code, r.stderr).toBe(2)
  expect(r.stderr).toMatch(new RegExp(`^readtrail: ${code}: `))
  expect(r.stdout).toBe('')
}

describe('report --out and evidence export --out never overwrite nor follow a link', () => {
  it('report --out an existing file: OUTPUT_EXISTS before any query, the file untouched (regression: overwritten, mode 0644 kept)', async () => {
    const out = join(work, 'existing.html')
    writeFileSync(out, 'the previous report', { mode: 0o644 })
    const r = await timed([...breach, '--out', out])
    expectCode(r, 'OUTPUT_EXISTS')
    expect(readFileSync(out, 'utf8')).toBe('the previous report')
    expect(existsSync(nowhere)).toBe(false)
  })

  it('report --out a symlink: OUTPUT_EXISTS, its target untouched (regression: the target was overwritten)', async () => {
    const target = join(work, 'victim.txt')
    writeFileSync(target, 'not the report')
    const out = join(work, 'link.html')
    symlinkSync(target, out)
    expectCode(await timed([...breach, '--out', out]), 'OUTPUT_EXISTS')
    expect(readFileSync(target, 'utf8')).toBe('not the report')
    expect(lstatSync(out).isSymbolicLink()).toBe(true)
  })

  it('report --out a dangling symlink: OUTPUT_EXISTS, nothing created at its target', async () => {
    const target = join(work, 'would-be-created.txt')
    const out = join(work, 'dangling.html')
    symlinkSync(target, out)
    expectCode(await timed([...breach, '--out', out]), 'OUTPUT_EXISTS')
    expect(existsSync(target)).toBe(false)
  })

  it('report --out in a directory that does not exist: OUTPUT_UNWRITABLE (ENOENT) before any query', async () => {
    const r = await timed([...breach, '--out', join(work, 'no-such-dir', 'r.html')])
    expectCode(r, 'OUTPUT_UNWRITABLE')
    expect(r.stderr).toContain('ENOENT')
  })

  it('evidence export --out an existing file: OUTPUT_EXISTS before the checkpoint copies (Kafka) are read', async () => {
    const out = join(work, 'bundle.json')
    writeFileSync(out, '{}')
    const r = await timed(['evidence', 'export', '--event', EVENT, '--out', out, '--data-dir', nowhere])
    expectCode(r, 'OUTPUT_EXISTS')
    expect(readFileSync(out, 'utf8')).toBe('{}')
    // Reading the Kafka copy of the checkpoints from a broker that refuses would take far longer.
    expect(r.ms).toBeLessThan(15_000)
  })

  it('keys generate --out a symlink is refused (created O_EXCL), its target untouched', async () => {
    const target = join(work, 'not-a-key.txt')
    writeFileSync(target, 'precious')
    const keyDir = join(work, 'keys')
    // Private, as readtrail wants the directory of its keys to be.
    mkdirSync(keyDir, { mode: 0o700 })
    symlinkSync(target, join(keyDir, 'checkpoint.key'))
    const r = await timed(['keys', 'generate', '--out', join(keyDir, 'checkpoint.key')])
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toMatch(/^readtrail: CHECKPOINT_KEY_INVALID: .*already exists/)
    expect(readFileSync(target, 'utf8')).toBe('precious')
  })
})

describe('report --out on a read-only file system', () => {
  const mountPoint = join(work, 'readonly')
  let mounted = false
  let why = ''
  beforeAll(() => {
    mkdirSync(mountPoint)
    // A read-only tmpfs gives a real EROFS. Mounting needs root (CAP_SYS_ADMIN); as another user
    // the test says why it did not run rather than pretending a mode-0500 directory is the same thing.
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', mountPoint], { stdio: 'pipe' })
      mounted = true
    } catch (err) {
      why = (err as Error).message
    }
  })
  afterAll(() => {
    if (mounted) execFileSync('umount', [mountPoint])
  })

  it('fails with OUTPUT_UNWRITABLE (errno EROFS) before any query runs (regression: an uncoded EROFS after the queries)', async (ctx) => {
    if (!mounted) ctx.skip(`cannot mount a read-only tmpfs here: ${why}`)
    const r = await timed([...breach, '--out', join(mountPoint, 'report.html')])
    expectCode(r, 'OUTPUT_UNWRITABLE')
    expect(r.stderr).toContain('EROFS')
    expect(existsSync(nowhere)).toBe(false)
    expect(readdirSync(mountPoint)).toEqual([])
  })
})

describe('evidence verify reads only a regular file', () => {
  it('/dev/zero: EVIDENCE_INVALID at once (regression: read 631 MB)', async () => {
    const r = await timed(['evidence', 'verify', '/dev/zero'])
    expectCode(r, 'EVIDENCE_INVALID')
    expect(r.stderr).toContain('not a regular file')
    expect(r.ms).toBeLessThan(10_000)
  })

  it('a named pipe nobody writes: EVIDENCE_INVALID at once (regression: blocked forever)', async () => {
    const fifo = join(work, 'bundle.fifo')
    execFileSync('mkfifo', [fifo])
    const r = await timed(['evidence', 'verify', fifo])
    expectCode(r, 'EVIDENCE_INVALID')
    expect(r.stderr).toContain('named pipe')
    expect(r.ms).toBeLessThan(10_000)
  })

  it('a directory: EVIDENCE_INVALID', async () => {
    expectCode(await timed(['evidence', 'verify', work]), 'EVIDENCE_INVALID')
  })

  it('a sparse file beyond the size bound: refused from its size, without reading it', async () => {
    const big = join(work, 'huge.json')
    execFileSync('truncate', ['-s', '300M', big])
    expect(statSync(big).size).toBe(300 * 1024 * 1024)
    const r = await timed(['evidence', 'verify', big])
    expectCode(r, 'EVIDENCE_INVALID')
    expect(r.stderr).toContain('more than an evidence bundle may be')
  })
})
