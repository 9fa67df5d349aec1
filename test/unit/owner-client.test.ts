import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type RequestListener, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { generateKeyFiles } from '../../checkpoints/keys.js'
import { callOwner, ownerSocketPath, type OwnerTarget } from '../../cli/owner-api.js'

/**
 * The owner client's bounds, against a peer that misbehaves on purpose: the
 * client reads nothing unbounded and waits for nothing forever, whoever
 * answers.
 */
const dir = mkdtempSync(join(tmpdir(), 'rt-owner-client-'))
const keys = generateKeyFiles(join(dir, 'keys', 'checkpoint.key'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let server: Server | undefined
afterEach(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)))
  server = undefined
})

async function peer(handler: RequestListener): Promise<OwnerTarget> {
  const dataDir = mkdtempSync(join(dir, 'data-'))
  writeFileSync(join(dataDir, 'readtrail-owner.json'), JSON.stringify({ pid: process.pid, command: 'readtrail consume', started_at: new Date().toISOString() }))
  server = createServer(handler)
  await new Promise<void>((resolve) => server!.listen(ownerSocketPath(dataDir), resolve))
  return { dataDir, database: 'readtrail', publicKeyPath: keys.publicPath, timeoutMs: 500 }
}

const ask = { op: 'query' as const, name: 'top-readers', params: {}, subjectKeys: [] }

describe('the owner client', () => {
  it('refuses an answer that states no length (chunked), without reading it', async () => {
    const target = await peer((_req, res) => {
      res.writeHead(200, { 'x-readtrail-owner-kind': 'json' })
      res.write('{"result":')
      res.end('[]}')
    })
    await expect(callOwner(target, ask)).rejects.toMatchObject({ code: 'OWNER_UNTRUSTED', message: expect.stringContaining('states no length') })
  })

  it('refuses an answer that declares more than an owner answer may be', async () => {
    const target = await peer((_req, res) => {
      res.writeHead(200, { 'x-readtrail-owner-kind': 'json', 'content-length': String(2 ** 40) })
      res.write('{"result":[')
    })
    await expect(callOwner(target, ask)).rejects.toMatchObject({ code: 'OWNER_UNTRUSTED' })
  })

  it('gives up on a peer that never answers (unavailable, so the lock is what gets reported)', async () => {
    const target = await peer(() => {})
    await expect(callOwner(target, ask)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', details: { unreachable: true } })
  })

  it('refuses a well-formed but unsigned answer, and says nothing of what it claimed', async () => {
    const body = JSON.stringify({ result: { rows: [{ principal_id: 'nobody' }] } })
    const target = await peer((_req, res) => res.writeHead(200, { 'content-length': Buffer.byteLength(body), 'x-readtrail-owner-pid': String(process.pid), 'x-readtrail-owner-kind': 'json' }).end(body))
    const err = await callOwner(target, ask)!.then(
      () => undefined,
      (e: unknown) => e as Error,
    )
    expect(err).toMatchObject({ code: 'OWNER_UNTRUSTED' })
    expect(err?.message).not.toContain('nobody')
  })
})
