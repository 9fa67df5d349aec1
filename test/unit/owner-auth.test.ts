import { spawn } from 'node:child_process'
import { generateKeyPairSync, sign } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createNonce, digestOf, isNonce, isOwnerAnswerSigned, OWNER_PROOF_DOMAIN, ownerProofMessage, signOwnerAnswer, type OwnerProofFields } from '../../cli/owner-auth.js'
import { checkPeerHoldsSocket } from '../../cli/owner-peer.js'
import { normalizeSql, resolveOwnerRead } from '../../cli/owner-reads.js'
import * as ownerReadSql from '../../integrity/owner-read-sql.js'

const owner = generateKeyPairSync('ed25519')
const other = generateKeyPairSync('ed25519')

const fields = (): OwnerProofFields => ({
  nonce: createNonce(),
  socketPath: '/var/lib/readtrail/chdb/readtrail.sock',
  pid: 4242,
  database: 'readtrail',
  status: 200,
  kind: 'json',
  requestDigest: digestOf(Buffer.from('{"ask":1}')),
  responseDigest: digestOf(Buffer.from('{"result":[]}')),
})

describe('owner answer proofs', () => {
  it('an answer signed with the checkpoint key verifies under its public key only', () => {
    const f = fields()
    const sig = signOwnerAnswer(owner.privateKey, f)
    expect(isOwnerAnswerSigned(owner.publicKey, f, sig)).toBe(true)
    expect(isOwnerAnswerSigned(other.publicKey, f, sig)).toBe(false)
    // An impostor signing with a key of its own is refused under the trusted key.
    expect(isOwnerAnswerSigned(owner.publicKey, f, signOwnerAnswer(other.privateKey, f))).toBe(false)
  })

  const changes: [string, (f: OwnerProofFields) => void][] = [
    ['another nonce (a replayed answer)', (f) => (f.nonce = createNonce())],
    ['another socket path', (f) => (f.socketPath = '/tmp/elsewhere/readtrail.sock')],
    ['another pid', (f) => (f.pid = 4243)],
    ['another database', (f) => (f.database = 'readtrail_copy')],
    ['another status (an error passed off as an answer)', (f) => (f.status = 400)],
    ['another kind', (f) => (f.kind = 'rows')],
    ['another request (an answer to a different question)', (f) => (f.requestDigest = digestOf(Buffer.from('{"ask":2}')))],
    ['another answer body (a substituted answer)', (f) => (f.responseDigest = digestOf(Buffer.from('{"result":[1]}')))],
  ]
  it.each(changes)('a signature does not carry over to %s', (_, change) => {
    const f = fields()
    const sig = signOwnerAnswer(owner.privateKey, f)
    const changed = { ...f }
    change(changed)
    expect(isOwnerAnswerSigned(owner.publicKey, changed, sig)).toBe(false)
  })

  it('is domain-separated: a signature of the same bytes without the domain (as a checkpoint signature would be) is refused', () => {
    const f = fields()
    const message = ownerProofMessage(f)
    expect(message.subarray(0, OWNER_PROOF_DOMAIN.length).toString()).toBe(OWNER_PROOF_DOMAIN)
    const undomained = sign(null, message.subarray(OWNER_PROOF_DOMAIN.length), owner.privateKey).toString('base64')
    expect(isOwnerAnswerSigned(owner.publicKey, f, undomained)).toBe(false)
  })

  it('fields cannot run into each other (a path holding the separator)', () => {
    const a = { ...fields(), socketPath: 'a","b', database: 'c' }
    const b = { ...a, socketPath: 'a', database: 'b","c' }
    expect(ownerProofMessage(a).equals(ownerProofMessage(b))).toBe(false)
  })

  it('accepts only the canonical base64 text of a 64-byte signature', () => {
    const f = fields()
    const sig = signOwnerAnswer(owner.privateKey, f)
    expect(isOwnerAnswerSigned(owner.publicKey, f, `${sig}\n`)).toBe(false)
    expect(isOwnerAnswerSigned(owner.publicKey, f, sig.replace(/=+$/, ''))).toBe(false)
    expect(isOwnerAnswerSigned(owner.publicKey, f, '')).toBe(false)
    expect(isOwnerAnswerSigned(owner.publicKey, f, 'not base64 at all')).toBe(false)
  })

  it('nonces are fresh 32-byte hex strings', () => {
    const a = createNonce()
    expect(isNonce(a)).toBe(true)
    expect(createNonce()).not.toBe(a)
    for (const bad of ['', 'ab', a.toUpperCase(), `${a}00`, 42, null]) expect(isNonce(bad)).toBe(false)
  })
})

describe('owner row reads', () => {
  const log = '`readtrail`.`access_log`'
  it('serves the independent scan’s statements whatever their layout, with validated parameters', () => {
    const query = `SELECT chain_id, max(seq) AS max_seq FROM ${log}\n   GROUP BY chain_id\nORDER BY chain_id`
    const read = resolveOwnerRead('readtrail', query, {}, 'JSONEachRow')
    expect(read.name).toBe('chain-list')
    expect(normalizeSql(read.sql)).toBe(normalizeSql(query))
    // The collector's statement laid out otherwise: lines indented, a condition on its own line, spaces doubled.
    const offsets = ownerReadSql.offsetsBoundedSql(log).replace(/\n/g, '\n   ').replace(' AND seq <=', '\n  AND seq <=').replace('FROM', 'FROM  ')
    expect(offsets).not.toBe(ownerReadSql.offsetsBoundedSql(log))
    expect(resolveOwnerRead('readtrail', offsets, { c: 'readtrail.access/0', lo: 0, hi: 10 }, 'RowBinary')).toMatchObject({ name: 'offsets-bounded', params: { c: 'readtrail.access/0', lo: 0, hi: 10 } })
    for (const params of [{ c: 'readtrail.access/0', lo: -1, hi: 10 }, { c: 'readtrail.access/0', lo: 0 }, { c: 'x', lo: 0, hi: 1.5 }, { c: '', lo: 0, hi: 1 }]) {
      expect(() => resolveOwnerRead('readtrail', offsets, params, 'RowBinary'), JSON.stringify(params)).toThrow(expect.objectContaining({ code: 'USAGE' }))
    }
  })

  it('serves every statement the independent collector sends, by the builder it shares with the collector', () => {
    const served: [keyof typeof ownerReadSql, string, 'RowBinary' | 'JSONEachRow', Record<string, unknown>][] = [
      ['chainListSql', 'chain-list', 'JSONEachRow', {}],
      ['segmentOpenSql', 'segment-open', 'RowBinary', { c: 'readtrail.access/0', lo: 0 }],
      ['segmentBoundedSql', 'segment-bounded', 'RowBinary', { c: 'readtrail.access/0', lo: 0, hi: 10 }],
      ['offsetsOpenSql', 'offsets-open', 'RowBinary', { c: 'readtrail.access/0', lo: 0 }],
      ['offsetsBoundedSql', 'offsets-bounded', 'RowBinary', { c: 'readtrail.access/0', lo: 0, hi: 10 }],
      ['findEventsSql', 'find-events', 'JSONEachRow', { chain_id: 'readtrail.access/0', ids: [] }],
      ['producerScanSql', 'producer-scan', 'RowBinary', {}],
      ['producersSinceSql', 'producers-since', 'JSONEachRow', { ids: ['p'], lowest: 0 }],
    ]
    // Every builder is listed: one added for the collector but not served would fail at run time.
    expect(served.map(([builder]) => builder).sort()).toEqual(Object.keys(ownerReadSql).sort())
    for (const [builder, name, format, params] of served) {
      const read = resolveOwnerRead('readtrail', ownerReadSql[builder](log), params, format)
      expect(read, builder).toMatchObject({ name, format, params })
      expect(read.sql).toBe(ownerReadSql[builder](log))
    }
  })

  it('refuses any other SQL, the right SQL in another format, another database, and wrong parameters', () => {
    const refusals: [unknown, unknown, 'RowBinary' | 'JSONEachRow', string][] = [
      [`ALTER TABLE ${log} DELETE WHERE 1`, {}, 'RowBinary', 'readtrail'],
      [`SELECT chain_id, max(seq) AS max_seq FROM ${log} GROUP BY chain_id ORDER BY chain_id; DROP TABLE ${log}`, {}, 'JSONEachRow', 'readtrail'],
      [`SELECT chain_id, max(seq) AS max_seq FROM ${log} GROUP BY chain_id ORDER BY chain_id`, {}, 'RowBinary', 'readtrail'],
      [`SELECT chain_id, max(seq) AS max_seq FROM ${log} GROUP BY chain_id ORDER BY chain_id`, {}, 'JSONEachRow', 'other'],
      [`SELECT chain_id, max(seq) AS max_seq FROM ${log} GROUP BY chain_id ORDER BY chain_id`, { extra: 1 }, 'JSONEachRow', 'readtrail'],
      [42, {}, 'JSONEachRow', 'readtrail'],
    ]
    for (const [query, params, format, database] of refusals) {
      expect(() => resolveOwnerRead(database, query, params, format), JSON.stringify(query)).toThrow(expect.objectContaining({ code: 'USAGE' }))
    }
  })
})

describe('checkPeerHoldsSocket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rt-peer-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('finds the listening socket among the fds of the process that bound it, and not among another process’s', async () => {
    const path = join(dir, 'readtrail.sock')
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(path, resolve))
    const sleeper = spawn('sleep', ['30'])
    try {
      const here = checkPeerHoldsSocket(process.pid, path)
      // Linux only; elsewhere the signature is the whole proof.
      if (here === 'unavailable') return
      expect(here).toBe('held')
      expect(checkPeerHoldsSocket(sleeper.pid!, path)).toBe('not-held')
      expect(checkPeerHoldsSocket(process.pid, join(dir, 'other.sock'))).toBe('not-held')
    } finally {
      sleeper.kill()
      await new Promise((r) => server.close(r))
    }
  })
})
