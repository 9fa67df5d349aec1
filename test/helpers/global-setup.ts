import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/**
 * Integration tests run the CLI as users do, from the compiled output under
 * plain Node (not a TypeScript loader, whose CommonJS interop is more lenient
 * than Node's): compile once before any test file runs. Type errors are the
 * typecheck step's verdict (`npm test` runs it first and stops on any); tsc
 * still emits JavaScript despite them, so a developer running one test file
 * in a tree that does not typecheck yet is not blocked here.
 */
export default function setup(): void {
  const cwd = fileURLToPath(new URL('../../', import.meta.url))
  try {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd, stdio: 'pipe' })
  } catch (err) {
    // 2: type errors, output emitted; anything else (tsc missing, a crash) is fatal.
    if ((err as { status?: number }).status !== 2) throw err
    process.stderr.write('global-setup: tsc reported type errors (JavaScript emitted anyway; npm test fails on them in its typecheck step)\n')
  }
  execFileSync('node', ['scripts/copy-assets.mjs'], { cwd, stdio: 'inherit' })
}
