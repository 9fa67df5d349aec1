import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deferCleanup } from './cleanup.js'

/** A new empty directory under the system temp dir (0700, as mkdtemp makes it), removed when the test file ends. */
export function freshTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  deferCleanup(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}
