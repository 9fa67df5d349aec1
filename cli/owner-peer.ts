import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

/**
 * A second, Linux-only check of the owner, beside the signature on every
 * answer: the pid the owner record names must hold open a listening Unix
 * socket bound at the owner socket's path. Node has no SO_PEERCRED, but
 * /proc/net/unix lists each bound socket's inode and path, and
 * /proc/<pid>/fd shows which sockets a process holds. This alone proves
 * little (a relay in the middle binds the same path), which is why the
 * signature stays the real proof; it catches an owner record that names some
 * unrelated live process.
 *
 * 'unavailable' where /proc does not exist (or hides other processes):
 * the caller then relies on the signature alone.
 */
export function checkPeerHoldsSocket(pid: number, socketPath: string): 'held' | 'not-held' | 'unavailable' {
  let table: string
  try {
    table = readFileSync('/proc/net/unix', 'utf8')
  } catch {
    return 'unavailable'
  }
  const inodes = new Set<string>()
  for (const line of table.split('\n').slice(1)) {
    // Num RefCount Protocol Flags Type St Inode Path — the path may hold spaces.
    const fields = line.trim().split(/\s+/)
    if (fields.length < 8) continue
    if (fields.slice(7).join(' ') === socketPath && fields[6]) inodes.add(fields[6])
  }
  let fds: string[]
  try {
    fds = readdirSync(`/proc/${pid}/fd`)
  } catch {
    return 'unavailable'
  }
  // Bounded: a process holds at most its fd limit, and we stop at the first match.
  for (const fd of fds) {
    let target: string
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`)
    } catch {
      continue
    }
    const m = /^socket:\[(\d+)\]$/.exec(target)
    if (m && inodes.has(m[1]!)) return 'held'
  }
  return 'not-held'
}
