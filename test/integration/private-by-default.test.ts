import { spawnSync } from 'node:child_process'
import { chmodSync, lstatSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createAuditProducer } from '../../producers/audit-producer.js'
import type { ReadInput } from '../../schemas/read-input.js'
import { deferCleanup } from '../helpers/cleanup.js'
import { runCli, spawnCli } from '../helpers/cli-process.js'
import { freshTopic, TEST_BROKERS, testKafka, testLogger } from '../helpers/kafka.js'
import { createLogger } from '../../common/logger.js'
import { testSigningKey } from '../helpers/producer-trust.js'

/**
 * Issue 11, "nobody but its owner reads the log". Reproduced before the fix:
 * the data directory was created 0755 with 0644 files, so another local user
 * copied it and read every row with chDB, and the outbox's segments (0644)
 * still held readable events after the outbox had drained.
 *
 * Here a second local user (nobody) tries the same against a home made the
 * way users make one (the README's demo, `keys generate`, `consume`, the SDK
 * with an outbox, `verify`), inside a parent directory everyone can enter.
 */

/** How this machine runs a process as a second local user, or why it cannot. */
function secondUser(): { uid: number; gid: number; prefix: string[] } | { skip: string } {
  const id = (flag: string) => Number(spawnSync('id', [flag, 'nobody'], { encoding: 'utf8' }).stdout.trim())
  const uid = id('-u')
  const gid = id('-g')
  if (!Number.isInteger(uid) || uid <= 0 || !Number.isInteger(gid)) return { skip: 'no `nobody` user on this machine to read as' }
  if (process.getuid?.() !== 0) return { skip: 'tests are not running as root, so they cannot act as a second local user' }
  const has = (command: string) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0
  if (has('setpriv')) return { uid, gid, prefix: ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups'] }
  if (has('runuser')) return { uid, gid, prefix: ['runuser', '-u', 'nobody', '--'] }
  // Root can still drop to nobody inside the probe itself.
  return { uid, gid, prefix: [] }
}

const user = secondUser()

interface Probe {
  kind: 'read' | 'list' | 'connect'
  path: string
}

/**
 * Runs the probes as the second user and returns each one's outcome: 'ok',
 * or the errno it failed with. Node's own fs and net, so a "cannot" is the
 * kernel's answer, not a missing tool's.
 */
function probeAsOtherUser(probes: Probe[]): (Probe & { outcome: string })[] {
  if ('skip' in user) throw new Error(user.skip)
  const script = `
    if (${user.prefix.length === 0}) { process.setgroups([]); process.setgid(${user.gid}); process.setuid(${user.uid}) }
    const fs = require('node:fs'), net = require('node:net')
    const probes = JSON.parse(fs.readFileSync(0, 'utf8'))
    ;(async () => {
      const out = []
      for (const p of probes) {
        let outcome
        try {
          if (p.kind === 'read') { fs.readFileSync(p.path); outcome = 'ok' }
          else if (p.kind === 'list') { fs.readdirSync(p.path); outcome = 'ok' }
          else outcome = await new Promise((resolve) => {
            const socket = net.connect(p.path)
            socket.once('connect', () => { socket.destroy(); resolve('ok') })
            socket.once('error', (e) => resolve(e.code))
          })
        } catch (e) { outcome = e.code }
        out.push({ ...p, outcome })
      }
      process.stdout.write(JSON.stringify({ uid: process.getuid(), out }))
    })()`
  const [command, ...args] = [...user.prefix, process.execPath, '-e', script]
  // The probe list goes on stdin: a store's worth of paths is longer than a command line may be.
  const r = spawnSync(command!, args, { cwd: '/', input: JSON.stringify(probes), encoding: 'utf8', timeout: 60_000 })
  if (r.status !== 0) throw new Error(`probe as uid ${user.uid} failed (${r.status ?? r.error?.message}): ${r.stderr}`)
  const { uid, out } = JSON.parse(r.stdout) as { uid: number; out: (Probe & { outcome: string })[] }
  // The probes must really have run as the other user, or every "ok" and "EACCES" below means nothing.
  expect(uid).toBe(user.uid)
  return out
}

/** Every directory and regular file under `root` (symlinks and sockets apart), as the owner sees them. */
function walk(root: string): { dirs: string[]; files: string[]; sockets: string[] } {
  const found = { dirs: [root], files: [] as string[], sockets: [] as string[] }
  for (const name of readdirSync(root, { recursive: true }) as string[]) {
    const path = join(root, name)
    const stat = lstatSync(path, { throwIfNoEntry: false })
    if (stat?.isDirectory()) found.dirs.push(path)
    else if (stat?.isFile()) found.files.push(path)
    else if (stat?.isSocket()) found.sockets.push(path)
  }
  return found
}

const modeOf = (path: string) => (lstatSync(path).mode & 0o777).toString(8)

/** Asserts that nobody but the owner has a single permission bit on anything under `root`. */
function expectOwnerOnly(root: string): ReturnType<typeof walk> {
  const found = walk(root)
  expect(found.dirs.filter((d) => modeOf(d) !== '700').map((d) => `${d} ${modeOf(d)}`)).toEqual([])
  expect([...found.files, ...found.sockets].filter((f) => (lstatSync(f).mode & 0o077) !== 0).map((f) => `${f} ${modeOf(f)}`)).toEqual([])
  return found
}

/** Everything the second user tries on `root`: list each directory, read each file, connect to each socket. */
function probesOf(found: ReturnType<typeof walk>): Probe[] {
  return [
    ...found.dirs.map((path) => ({ kind: 'list' as const, path })),
    ...found.files.map((path) => ({ kind: 'read' as const, path })),
    ...found.sockets.map((path) => ({ kind: 'connect' as const, path })),
  ]
}

const read = (principal: string, i: number): ReadInput => ({
  principal: { id: principal },
  resource: { database: 'registry', table: 'applicants' },
  columns: ['id', 'full_name'],
  recordIds: [100_000 + i],
})

describe.skipIf('skip' in user)(`a second local user cannot read readtrail's state${'skip' in user ? ` (skipped: ${user.skip})` : ''}`, () => {
  // The parent is open to everyone, as a home directory or a checkout often
  // is: only readtrail's own modes stand between the other user and the log.
  const base = mkdtempSync(join(tmpdir(), 'readtrail-private-'))
  chmodSync(base, 0o755)
  afterAll(() => rmSync(base, { recursive: true, force: true }))
  const control = join(base, 'public.txt')
  writeFileSync(control, 'anyone may read this\n', { mode: 0o644 })
  chmodSync(control, 0o644)
  const controlProbe: Probe = { kind: 'read', path: control }

  it('the probe reads what is readable (control), so its refusals below are real', () => {
    expect(probeAsOtherUser([controlProbe])).toEqual([{ ...controlProbe, outcome: 'ok' }])
  })

  it('the demo (the README main job) on a fresh machine leaves nothing another user can read; on a demo directory left open it refuses, naming the chmod', async () => {
    const dataDir = join(base, 'checkout', '.readtrail', 'demo')
    const env = { READTRAIL_KAFKA_BROKERS: TEST_BROKERS.join(',') }
    const first = await runCli(['demo', '--data-dir', dataDir], env)
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout).toContain('INTACT')
    // Its parents, made on the way, are private too.
    expect(modeOf(join(base, 'checkout'))).toBe('700')
    const found = expectOwnerOnly(join(base, 'checkout'))
    expect(found.files.length).toBeGreaterThan(20)
    expect(probeAsOtherUser(probesOf(found)).filter((p) => p.outcome !== 'EACCES')).toEqual([])

    // A demo directory left 0755 (by a version before this one, or by hand).
    chmodSync(dataDir, 0o755)
    const refused = await runCli(['demo', '--data-dir', dataDir], env)
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/^readtrail: DIRECTORY_NOT_PRIVATE: /)
    expect(refused.stderr).toContain(`run chmod 700 ${dataDir}`)
    chmodSync(dataDir, 0o700)
    const again = await runCli(['demo', '--data-dir', dataDir], env)
    expect(again.code, again.stderr).toBe(0)
  })

  it('keys, checkpoint log, store, owner socket, outbox and verify state are the owner\'s alone; a home opened up is refused by every command until it is private again', async () => {
    const home = join(base, 'service', '.readtrail')
    const outboxDir = join(base, 'app', 'outbox')
    const kafka = testKafka()
    const topic = await freshTopic(kafka, 2)
    const env = { READTRAIL_HOME: home, READTRAIL_KAFKA_BROKERS: TEST_BROKERS.join(','), READTRAIL_TOPIC: topic, READTRAIL_GROUP_ID: `${topic}-writer`, READTRAIL_CHECKPOINT_INTERVAL_MS: '500' }

    const keys = await runCli(['keys', 'generate'], env)
    expect(keys.code, keys.stderr).toBe(0)

    // The application's producer while the broker is unreachable: every event waits in the outbox.
    const offline = await createAuditProducer(
      { kafka: { brokers: ['127.0.0.1:1'], clientId: 'private-offline', connectionTimeoutMs: 200 }, topic, service: 'registry', signingKey: testSigningKey('registry'), outbox: { dir: outboxDir, sendDeadlineMs: 100 } },
      // Its connection errors to the missing broker are the point here, not news.
      { logger: createLogger({ level: 'silent' }) },
    )
    for (let i = 1; i <= 20; i++) expect((await offline.recordRead(read('clerk.private', i))).durability).toBe('outbox')
    await offline.close()
    const pending = expectOwnerOnly(join(base, 'app'))
    expect(pending.files.filter((f) => f.endsWith('.seg')).length).toBeGreaterThan(0)
    expect(probeAsOtherUser(probesOf(pending)).filter((p) => p.outcome !== 'EACCES')).toEqual([])

    const writer = spawnCli(['consume'], env)
    deferCleanup(() => writer.child.kill('SIGKILL'))
    try {
      await writer.waitFor(/serving queries for other readtrail processes/)
      // The application again, broker back: the outbox drains, then reads go direct.
      const online = await createAuditProducer({ kafka: { brokers: TEST_BROKERS, clientId: 'private-online' }, topic, service: 'registry', signingKey: testSigningKey('registry'), outbox: { dir: outboxDir } }, { logger: testLogger })
      try {
        expect(await online.drainOutbox(60_000)).toBe(true)
        for (let i = 21; i <= 25; i++) await online.recordRead(read('clerk.private', i))
      } finally {
        await online.close()
      }
      // Drained: no segment is left holding delivered events.
      expect(readdirSync(outboxDir).filter((n) => n.endsWith('.seg'))).toEqual([])

      // Through the owner: `query` is the same user, so the socket answers it.
      let rows = 0
      for (let attempt = 0; attempt < 60 && rows < 25; attempt++) {
        const q = await runCli(['query', 'records-touched-by-principal', '--param', 'principal=clerk.private', '--format', 'json'], env)
        expect([0, 3, 5], q.stderr).toContain(q.code)
        rows = (JSON.parse(q.stdout) as { row_count: number }).row_count
        if (rows < 25) await new Promise((r) => setTimeout(r, 500))
      }
      expect(rows).toBe(25)

      // While the writer owns the store, with its socket listening.
      const live = expectOwnerOnly(join(base, 'service'))
      expect(live.sockets).toEqual([join(home, 'chdb', 'readtrail.sock')])
      expect(modeOf(live.sockets[0]!)).toBe('600')
      for (const path of [join(home, 'keys', 'checkpoint.key'), join(home, 'keys', 'checkpoint.key.pub'), join(home, 'checkpoints.jsonl'), join(home, 'chdb', 'readtrail-owner.json')]) {
        expect(live.files).toContain(path)
      }
      expect(live.files.filter((f) => f.startsWith(join(home, 'chdb', 'store'))).length).toBeGreaterThan(10)
      const outcomes = probeAsOtherUser([...probesOf(live), ...probesOf(walk(join(base, 'app')))])
      expect(outcomes.filter((p) => p.outcome !== 'EACCES')).toEqual([])
      expect(outcomes.filter((p) => p.kind === 'connect')).toHaveLength(1)
    } finally {
      writer.child.kill('SIGTERM')
      expect((await writer.exited).code, writer.output().slice(-2000)).toBe(0)
    }

    const verify = await runCli(['verify'], env)
    expect(verify.code, verify.stdout + verify.stderr).toBe(0)
    const after = expectOwnerOnly(join(base, 'service'))
    expect(after.files).toEqual(expect.arrayContaining([join(home, 'verify-state.json'), join(home, 'keys', 'verifier.key'), join(home, 'keys', 'verifier.key.pub')]))
    expect(probeAsOtherUser(probesOf(after)).filter((p) => p.outcome !== 'EACCES')).toEqual([])

    // The home opened up (as an older version left it, or a careless chmod):
    // readers refuse as well as the writer, and nothing is claimed or written.
    chmodSync(home, 0o755)
    chmodSync(join(home, 'chdb'), 0o755)
    for (const args of [['consume'], ['verify'], ['query', 'records-touched-by-principal', '--param', 'principal=clerk.private'], ['repair', '--dry-run']]) {
      const r = await runCli(args, env)
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toMatch(/^readtrail: DIRECTORY_NOT_PRIVATE: /)
      expect(r.stderr).toContain(`run chmod 700 ${join(home, 'chdb')} ${home}`)
    }
    expect(readdirSync(join(home, 'chdb'))).not.toContain('readtrail-owner.json')
    // The outbox too, in the application.
    chmodSync(outboxDir, 0o750)
    await expect(createAuditProducer({ kafka: { brokers: TEST_BROKERS, clientId: 'private-open' }, topic, service: 'registry', signingKey: testSigningKey('registry'), outbox: { dir: outboxDir } }, { logger: testLogger })).rejects.toMatchObject({
      code: 'DIRECTORY_NOT_PRIVATE',
      message: expect.stringContaining(`chmod 700 ${outboxDir}`),
    })

    // The fix the message names is enough.
    chmodSync(home, 0o700)
    chmodSync(join(home, 'chdb'), 0o700)
    const fixed = await runCli(['verify'], env)
    expect(fixed.code, fixed.stdout + fixed.stderr).toBe(0)
  })
})
