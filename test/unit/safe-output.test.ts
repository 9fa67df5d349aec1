import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { openOutputFile } from '../../cli/safe-output.js'
import { ReadtrailError } from '../../common/errors.js'
import { thrownBy } from '../helpers/thrown.js'

const thrown = (fn: () => unknown) => thrownBy(ReadtrailError, fn)

const dir = mkdtempSync(join(tmpdir(), 'rt-safe-output-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let n = 0
const fresh = (name: string) => {
  const d = join(dir, `${n++}`)
  mkdirSync(d)
  return join(d, name)
}

describe('openOutputFile without --force', () => {
  it('creates the file at open time (the name is held before any work) and writes it 0600 at commit', () => {
    const path = fresh('report.html')
    const out = openOutputFile(path)
    expect(lstatSync(path).isFile()).toBe(true)
    out.commit('<html>')
    expect(readFileSync(path, 'utf8')).toBe('<html>')
    expect(statSync(path).mode & 0o777).toBe(0o600)
  })

  it('refuses an existing file with OUTPUT_EXISTS and leaves it as it was (regression: report --out overwrote it, keeping mode 0644)', () => {
    const path = fresh('existing.html')
    writeFileSync(path, 'precious', { mode: 0o644 })
    const err = thrown(() => openOutputFile(path))
    expect(err).toMatchObject({ code: 'OUTPUT_EXISTS', retriable: false, details: { path, kind: 'file' } })
    expect(readFileSync(path, 'utf8')).toBe('precious')
    expect(statSync(path).mode & 0o777).toBe(0o644)
  })

  it('refuses a symlink to a file and never writes its target (regression: report --out followed it)', () => {
    const path = fresh('link.html')
    const target = join(dir, `target-${n}.txt`)
    writeFileSync(target, 'not yours')
    symlinkSync(target, path)
    expect(thrown(() => openOutputFile(path))).toMatchObject({ code: 'OUTPUT_EXISTS', details: { kind: 'symlink' } })
    expect(readFileSync(target, 'utf8')).toBe('not yours')
  })

  it('refuses a dangling symlink and does not create its target', () => {
    const path = fresh('dangling.html')
    const target = join(dir, `never-${n}.txt`)
    symlinkSync(target, path)
    expect(thrown(() => openOutputFile(path))).toMatchObject({ code: 'OUTPUT_EXISTS', details: { kind: 'symlink' } })
    expect(() => lstatSync(target)).toThrow()
  })

  it('refuses a directory with OUTPUT_EXISTS', () => {
    const path = fresh('a-dir')
    mkdirSync(path)
    expect(thrown(() => openOutputFile(path))).toMatchObject({ code: 'OUTPUT_EXISTS', details: { kind: 'directory' } })
  })

  it('names a missing directory as OUTPUT_UNWRITABLE with errno ENOENT', () => {
    const path = join(dir, 'no-such-dir', 'x.html')
    expect(thrown(() => openOutputFile(path))).toMatchObject({ code: 'OUTPUT_UNWRITABLE', details: { path, errno: 'ENOENT' } })
  })

  it('abandon removes the file it created, so a failed run can simply be rerun', () => {
    const path = fresh('abandoned.html')
    const out = openOutputFile(path)
    out.abandon()
    expect(() => lstatSync(path)).toThrow()
    // Idempotent, and a no-op after commit.
    out.abandon()
    const again = openOutputFile(path)
    again.commit('x')
    again.abandon()
    expect(readFileSync(path, 'utf8')).toBe('x')
  })

  it('refuses a second commit', () => {
    const out = openOutputFile(fresh('twice.html'))
    out.commit('a')
    expect(thrown(() => out.commit('b'))).toMatchObject({ code: 'USAGE' })
  })
})

describe('openOutputFile with force', () => {
  it('replaces an existing file atomically: the old contents stay until commit, the new file is 0600, no temporary file is left', () => {
    const path = fresh('replace.html')
    writeFileSync(path, 'old', { mode: 0o644 })
    const out = openOutputFile(path, { force: true })
    expect(readFileSync(path, 'utf8')).toBe('old')
    out.commit('new')
    expect(readFileSync(path, 'utf8')).toBe('new')
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(readdirSync(join(path, '..'))).toEqual(['replace.html'])
  })

  it('replaces a symlink itself, never writing its target', () => {
    const path = fresh('forced-link.html')
    const target = join(dir, `forced-target-${n}.txt`)
    writeFileSync(target, 'not yours')
    symlinkSync(target, path)
    openOutputFile(path, { force: true }).commit('report')
    expect(readFileSync(target, 'utf8')).toBe('not yours')
    expect(lstatSync(path).isSymbolicLink()).toBe(false)
    expect(readFileSync(path, 'utf8')).toBe('report')
  })

  it('abandon leaves the existing file untouched and removes the temporary file', () => {
    const path = fresh('kept.html')
    writeFileSync(path, 'old')
    openOutputFile(path, { force: true }).abandon()
    expect(readFileSync(path, 'utf8')).toBe('old')
    expect(readdirSync(join(path, '..'))).toEqual(['kept.html'])
  })

  it('refuses a directory with OUTPUT_UNWRITABLE (EISDIR) before any work', () => {
    const path = fresh('forced-dir')
    mkdirSync(path)
    expect(thrown(() => openOutputFile(path, { force: true }))).toMatchObject({ code: 'OUTPUT_UNWRITABLE', details: { errno: 'EISDIR' } })
  })

  it('fails at open time in a directory it cannot write (as root, permissions do not stop it: checked only when not root)', () => {
    if (process.getuid?.() === 0) return
    const d = fresh('ro')
    mkdirSync(d)
    chmodSync(d, 0o500)
    expect(thrown(() => openOutputFile(join(d, 'x.html'), { force: true }))).toMatchObject({ code: 'OUTPUT_UNWRITABLE', details: { errno: 'EACCES' } })
  })
})
