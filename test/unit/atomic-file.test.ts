import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { replaceFile, replaceFileSync } from '../../common/atomic-file.js'

describe('replaceFile / replaceFileSync', () => {
  const dirs: string[] = []
  const fresh = () => {
    const d = mkdtempSync(join(tmpdir(), 'rt-atomic-'))
    dirs.push(d)
    return d
  }
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })))

  for (const [name, replace] of [
    ['async', replaceFile],
    ['sync', replaceFileSync],
  ] as const) {
    it(`${name}: replaces the contents, 0600, leaving no temporary file`, async () => {
      const dir = fresh()
      const path = join(dir, 'state.json')
      writeFileSync(path, 'old')
      await replace(path, 'new')
      expect(readFileSync(path, 'utf8')).toBe('new')
      expect(statSync(path).mode & 0o777).toBe(0o600)
      expect(readdirSync(dir)).toEqual(['state.json'])
    })

    it(`${name}: writes through the temporary file it is given`, async () => {
      const dir = fresh()
      // A stale temp file from a crash is overwritten, not appended to.
      writeFileSync(join(dir, 'cursor.tmp'), 'torn half of an older write')
      await replace(join(dir, 'cursor'), 'whole', { tempPath: join(dir, 'cursor.tmp') })
      expect(readFileSync(join(dir, 'cursor'), 'utf8')).toBe('whole')
      expect(readdirSync(dir)).toEqual(['cursor'])
    })
  }
})
