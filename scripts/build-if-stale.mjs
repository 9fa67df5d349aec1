// `npm run demo` builds only when dist/ is older than its sources: tsc takes
// about 26 s here, and a demo run after a build has nothing new to compile.
// The stamp records the newest source mtime the last build saw, taken before
// it started, so a file edited while tsc ran still counts as newer.
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const STAMP = 'dist/.build-stamp.json'
// What the build reads besides the sources tsconfig.build.json includes.
const BUILD_INPUTS = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts/copy-assets.mjs']

/** tsconfig.build.json's include list (the file may carry // comments). */
function includedRoots() {
  const text = readFileSync('tsconfig.build.json', 'utf8').replace(/^\s*\/\/.*$/gm, '')
  return JSON.parse(text).include
}

/** Newest mtime of a file or of anything under a directory (directories count: a deleted file changes its directory). */
function newestMtime(path) {
  let st
  try {
    st = statSync(path)
  } catch {
    return 0
  }
  let newest = st.mtimeMs
  if (st.isDirectory()) for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)))
  return newest
}

function stampedMtime() {
  try {
    return JSON.parse(readFileSync(STAMP, 'utf8')).sourceMtimeMs
  } catch {
    return undefined
  }
}

const sourceMtimeMs = Math.max(...[...includedRoots(), ...BUILD_INPUTS].map(newestMtime))
const stamped = stampedMtime()
if (typeof stamped === 'number' && stamped >= sourceMtimeMs) {
  console.log('dist/ is current; skipping the build')
} else {
  const build = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' })
  if (build.status !== 0) process.exit(build.status ?? 1)
  writeFileSync(STAMP, JSON.stringify({ sourceMtimeMs }) + '\n')
}
