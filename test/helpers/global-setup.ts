import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/**
 * Integration tests run the CLI as users do, from the compiled output under
 * plain Node (not a TypeScript loader, whose CommonJS interop is more lenient
 * than Node's): compile once before any test file runs.
 */
export default function setup(): void {
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: fileURLToPath(new URL('../../', import.meta.url)), stdio: 'inherit' })
}
