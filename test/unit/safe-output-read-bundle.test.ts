import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { readBundleFile } from '../../evidence/read-bundle-file.js'
import { thrown } from '../helpers/thrown.js'

/** The reading side of hostile files: what `evidence verify` will and will not read. */
const dir = mkdtempSync(join(tmpdir(), 'rt-read-bundle-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('readBundleFile', () => {
  it('reads a regular file, and one behind a symlink', async () => {
    const path = join(dir, 'bundle.json')
    writeFileSync(path, '{"format":"x"}')
    expect(await readBundleFile(path)).toBe('{"format":"x"}')
    symlinkSync(path, join(dir, 'link.json'))
    expect(await readBundleFile(join(dir, 'link.json'))).toBe('{"format":"x"}')
  })

  it('refuses /dev/zero at once, before reading a byte (regression: it read 631 MB)', async () => {
    const started = Date.now()
    expect(await thrown(readBundleFile('/dev/zero'))).toMatchObject({ code: 'EVIDENCE_INVALID', details: { issues: [{ key: '(root)', problem: 'not a regular file' }] } })
    expect(Date.now() - started).toBeLessThan(1000)
  })

  it('refuses a symlink to a device the same way (the type comes from the opened descriptor)', async () => {
    symlinkSync('/dev/zero', join(dir, 'zero.json'))
    expect(await thrown(readBundleFile(join(dir, 'zero.json')))).toMatchObject({ code: 'EVIDENCE_INVALID' })
  })

  it('refuses a named pipe without waiting for a writer (regression: it blocked forever)', async () => {
    const fifo = join(dir, 'pipe.json')
    execFileSync('mkfifo', [fifo])
    const err = await Promise.race([thrown(readBundleFile(fifo)), new Promise((resolve) => setTimeout(() => resolve('blocked'), 2000))])
    expect(err).toMatchObject({ code: 'EVIDENCE_INVALID', message: expect.stringContaining('named pipe') })
  })

  it('refuses a directory', async () => {
    mkdirSync(join(dir, 'a-dir'))
    expect(await thrown(readBundleFile(join(dir, 'a-dir')))).toMatchObject({ code: 'EVIDENCE_INVALID', message: expect.stringContaining('directory') })
  })

  it('refuses a file over the bound from its size, before reading it', async () => {
    const path = join(dir, 'big.json')
    writeFileSync(path, 'x'.repeat(2048))
    expect(await thrown(readBundleFile(path, 1024))).toMatchObject({ code: 'EVIDENCE_INVALID', details: { issues: [{ problem: 'file larger than 1024 bytes' }] } })
    expect(await readBundleFile(path, 2048)).toHaveLength(2048)
  })

  it('names a missing file as USAGE with its errno', async () => {
    expect(await thrown(readBundleFile(join(dir, 'absent.json')))).toMatchObject({ code: 'USAGE', details: { errno: 'ENOENT' } })
  })
})
