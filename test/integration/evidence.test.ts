import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { GENESIS_CHECKPOINT, keyId, signCheckpoint, type SignedCheckpoint } from '../../checkpoints/checkpoint.js'
import { isReadtrailError, type ReadtrailError } from '../../common/errors.js'
import { evidenceExportCommand, evidenceVerifyCommand } from '../../cli/evidence-command.js'
import { emptyChain, linkEntries } from '../../consumers/chain.js'
import { chainedRowOf, parseEvidenceText, serializeEvidenceBundle } from '../../evidence/bundle.js'
import { exportEvidence } from '../../evidence/export-bundle.js'
import { verifyEvidence } from '../../evidence/verify-bundle.js'
import type { AccessEvent } from '../../schemas/access-event.js'
import { writeCanonical } from '../../store/access-log-columns.js'
import { RowBinaryWriter } from '../../store/row-binary.js'
import type { Store } from '../../store/store.js'
import { runCli } from '../helpers/cli-process.js'
import { makeEvent } from '../helpers/events.js'
import { seedChain } from '../helpers/seed-chain.js'
import { openTestStore } from '../helpers/store.js'

const CHAIN = 'access-events/0'

interface SigningPair {
  privateKey: KeyObject
  pem: string
  keyId: string
}

function newKey(): SigningPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return { privateKey, pem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), keyId: keyId(publicKey) }
}

const KEY = newKey()

const MANY_IDS = Array.from({ length: 5000 }, (_, i) => `applicant-${i}`)

/** One row per shape the bundle must carry faithfully. */
const VARIANTS: Partial<AccessEvent>[] = [
  { client_ip: '192.0.2.10' },
  { client_ip: null, session_hash: null, on_behalf_of: null, purpose: null, trace_id: null, record_ids: [] },
  {
    client_ip: '2001:0DB8:0:0::7',
    session_hash: Buffer.alloc(32, 0x5a),
    on_behalf_of: 'case-officer',
    purpose: 'appeal review',
    trace_id: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  },
  { record_ids: MANY_IDS, row_count: MANY_IDS.length, action: 'export' },
  {
    principal_id: 'Zoë 🦊 — 東京',
    principal_type: 'service',
    on_behalf_of: 'officer "x" \\ \n\ttab',
    record_ids: ['é', '', '東京-1', 'a"b\\c', '🦊'],
    record_ids_complete: false,
    purpose: 'ré-examen № 42',
    query_fingerprint: 'SELECT "名前" FROM applicants WHERE id IN (?+)',
    outcome: 'denied',
  },
  { client_ip: '10.1.2.3', action: 'search' },
  { client_ip: '::1', outcome: 'error' },
  { client_ip: 'fe80:0:0:0:1::' },
  {},
  { client_ip: '255.255.255.255', principal_type: 'system' },
]

interface Seeded {
  store: Store
  events: AccessEvent[]
  /** Signs a checkpoint over the stored row at `seq`. */
  checkpoint(seq: number, options?: { key?: SigningPair; index?: number; overrides?: Partial<SignedCheckpoint> }): Promise<SignedCheckpoint>
}

const PRODUCER_KEY = 'c0'.repeat(32)

/** Kafka messages as [offset, events]: offset 0 a wire-1 message, offset 1 a signed batch of four, offset 2 one of two (seqs 1, 2..5, 6..7). */
const BATCHES: [bigint, number][] = [
  [0n, 1],
  [1n, 4],
  [2n, 2],
]

/** Stores BATCHES' events as the chain writer links them, each row with its place in its message and its batch's key. */
async function seedBatches(store: Store): Promise<AccessEvent[]> {
  const entries = BATCHES.flatMap(([offset, events]) =>
    Array.from({ length: events }, (_, index) => ({ event: makeEvent(), offset, index, events, keyId: events > 1 ? PRODUCER_KEY : '', schemaVersion: 1 })),
  )
  const linked = linkEntries(emptyChain(CHAIN), entries, Date.UTC(2026, 10, 27, 12) * 1000)
  await store.insertRowBinary('access_log', linked.rows, linked.count)
  return entries.map((e) => e.event)
}

async function seeded(seed: (store: Store) => Promise<AccessEvent[]> = (store) => seedChain(store, CHAIN, VARIANTS.length, (i) => VARIANTS[i]!)): Promise<Seeded> {
  const store = await openTestStore()
  const events = await seed(store)
  return {
    store,
    events,
    async checkpoint(seq, { key = KEY, index = seq, overrides = {} } = {}) {
      const [row] = await store.queryRows<{ hash: string; kafka_offset: string }>(
        `SELECT lower(hex(hash)) AS hash, toString(kafka_offset) AS kafka_offset FROM ${store.table('access_log')} WHERE chain_id = {chain_id:String} AND seq = {seq:UInt64}`,
        { chain_id: CHAIN, seq },
      )
      return signCheckpoint(
        {
          v: 1,
          database: store.database,
          chain_id: CHAIN,
          index,
          seq,
          hash: row!.hash,
          kafka_offset: row!.kafka_offset,
          signed_at: '2026-11-27T12:00:10.000Z',
          prev: GENESIS_CHECKPOINT,
          key_id: key.keyId,
          ...overrides,
        },
        key.privateKey,
      )
    },
  }
}

async function rejection(promise: Promise<unknown>): Promise<ReadtrailError> {
  try {
    await promise
  } catch (err) {
    if (isReadtrailError(err)) return err
    throw err
  }
  throw new Error('expected a ReadtrailError')
}

async function editRow(store: Store, seq: number, principal: string): Promise<void> {
  await store.client.command({
    query: `ALTER TABLE ${store.table('access_log')} UPDATE principal_id = {principal:String} WHERE chain_id = {chain_id:String} AND seq = {seq:UInt64} SETTINGS mutations_sync = 2`,
    query_params: { principal, chain_id: CHAIN, seq },
  })
}

function collector(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk)
      done()
    },
  })
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') }
}

const workDir = mkdtempSync(join(tmpdir(), 'readtrail-evidence-'))
afterAll(() => rmSync(workDir, { recursive: true, force: true }))

describe('evidence export from a real store', () => {
  it('exports an event in the middle of a chain and the bundle proves it offline', async () => {
    const s = await seeded()
    const event = s.events[4]!
    const other = newKey()
    const checkpoints = [
      await s.checkpoint(3),
      await s.checkpoint(6, { key: other }), // another key's: ignored
      { ...(await s.checkpoint(7)), chain_id: 'access-events/9' }, // signature broken by the edit: ignored
      await s.checkpoint(10),
      await s.checkpoint(8),
    ]
    const bundle = await exportEvidence(s.store, { eventId: event.event_id.toUpperCase(), checkpoints, publicKeyPem: KEY.pem, now: () => new Date('2026-11-28T09:00:00Z') })
    expect(bundle.checkpoint.seq).toBe(8)
    expect(bundle.segment.map((r) => r.seq)).toEqual([6, 7, 8])
    expect(bundle.exported_at).toBe('2026-11-28T09:00:00.000Z')
    expect(bundle.key_id).toBe(KEY.keyId)

    // Offline: only the file's text, no store.
    const text = serializeEvidenceBundle(bundle)
    // Only against a key the verifier trusts: the one the bundle carries proves nothing.
    expect(verifyEvidence(parseEvidenceText(text))).toMatchObject({ ok: false, code: 'EVIDENCE_KEY_UNTRUSTED', failed_step: 'check-trusted-key' })
    const verdict = verifyEvidence(parseEvidenceText(text), { trustedKeyPem: KEY.pem })
    expect(verdict.ok).toBe(true)
    expect(verdict.event).toMatchObject({ event_id: event.event_id, chain_id: CHAIN, seq: 5, principal_id: 'Zoë 🦊 — 東京', record_count: 5 })
    expect(verdict.proved[1]).toContain('rows seq 5..8 of that chain link by SHA-256 to checkpoint #8 (seq 8')
    expect(verifyEvidence(parseEvidenceText(text), { trustedKeyPem: KEY.pem }).ok).toBe(true)
    expect(verifyEvidence(parseEvidenceText(text), { trustedKeyPem: other.pem })).toMatchObject({ ok: false, failed_step: 'check-trusted-key' })
  })

  it('round-trips NULL optional fields, IPv4 and IPv6 addresses, many record ids and unicode', async () => {
    const s = await seeded()
    const checkpoints = [await s.checkpoint(VARIANTS.length)]
    for (const [i, event] of s.events.entries()) {
      const bundle = await exportEvidence(s.store, { eventId: event.event_id, checkpoints, publicKeyPem: KEY.pem })
      const verdict = verifyEvidence(JSON.parse(serializeEvidenceBundle(bundle)), { trustedKeyPem: KEY.pem })
      expect(verdict.ok, `seq ${i + 1}: ${verdict.problem}`).toBe(true)
      const { session_hash, client_ip, ...rest } = event
      expect(bundle.event).toMatchObject({ ...rest, chain_id: CHAIN, seq: i + 1, kafka_offset: String(i), schema_version: 1 })
      expect(bundle.event.session_hash).toBe(session_hash === null ? null : session_hash.toString('hex'))
      expect(bundle.segment).toHaveLength(VARIANTS.length - i - 1)
      const expectedIp: Record<string, string> = { '2001:0DB8:0:0::7': '2001:db8::7', 'fe80:0:0:0:1::': 'fe80::1:0:0:0' }
      expect(bundle.event.client_ip).toBe(client_ip === null ? null : (expectedIp[client_ip] ?? client_ip))
    }
    const many = await exportEvidence(s.store, { eventId: s.events[3]!.event_id, checkpoints, publicKeyPem: KEY.pem })
    expect(many.event.record_ids).toEqual(MANY_IDS)
  })

  it("exports an event of a signed batch: its place in the message and the batch's key re-hash, offline", async () => {
    const s = await seeded(seedBatches)
    // seq 5 ends the batch at offset 1, where the signer checkpoints.
    const checkpoints = [await s.checkpoint(5), await s.checkpoint(7)]
    const bundle = await exportEvidence(s.store, { eventId: s.events[2]!.event_id, checkpoints, publicKeyPem: KEY.pem })
    expect(bundle.event).toMatchObject({ seq: 3, kafka_offset: '1', message_index: 1, message_events: 4, key_id: PRODUCER_KEY })
    expect(bundle.segment.map((r) => r.seq)).toEqual([4, 5])
    expect(bundle.checkpoint.kafka_offset).toBe('1')
    expect(verifyEvidence(parseEvidenceText(serializeEvidenceBundle(bundle)), { trustedKeyPem: KEY.pem }).ok).toBe(true)

    const unsigned = await exportEvidence(s.store, { eventId: s.events[0]!.event_id, checkpoints, publicKeyPem: KEY.pem })
    expect(unsigned.event).toMatchObject({ seq: 1, kafka_offset: '0', message_index: 0, message_events: 1, key_id: '' })
    expect(verifyEvidence(unsigned, { trustedKeyPem: KEY.pem }).ok).toBe(true)
  })

  it("refuses to export across a row whose producer key was edited in the store: the hash covers key_id", async () => {
    const s = await seeded(seedBatches)
    const checkpoints = [await s.checkpoint(7)]
    await s.store.client.command({
      query: `ALTER TABLE ${s.store.table('access_log')} UPDATE key_id = '' WHERE chain_id = {chain_id:String} AND seq = {seq:UInt64} SETTINGS mutations_sync = 2`,
      query_params: { chain_id: CHAIN, seq: 4 },
    })
    const err = await rejection(exportEvidence(s.store, { eventId: s.events[2]!.event_id, checkpoints, publicKeyPem: KEY.pem }))
    expect(err.code).toBe('EVIDENCE_CHAIN_BROKEN')
    expect(err.details).toMatchObject({ chain_id: CHAIN, seq: 4 })
  })

  it('refuses to export across a row edited in the store: EVIDENCE_CHAIN_BROKEN at that row', async () => {
    const s = await seeded()
    const checkpoints = [await s.checkpoint(8), await s.checkpoint(10)]
    await editRow(s.store, 7, 'mallory')
    const err = await rejection(exportEvidence(s.store, { eventId: s.events[4]!.event_id, checkpoints, publicKeyPem: KEY.pem }))
    expect(err.code).toBe('EVIDENCE_CHAIN_BROKEN')
    expect(err.details).toMatchObject({ chain_id: CHAIN, seq: 7 })
    // Rows after the damage still link to their own checkpoint.
    const later = await exportEvidence(s.store, { eventId: s.events[8]!.event_id, checkpoints, publicKeyPem: KEY.pem })
    expect(verifyEvidence(later, { trustedKeyPem: KEY.pem }).ok).toBe(true)
  })

  it('refuses to export an event whose own row was edited', async () => {
    const s = await seeded()
    const checkpoints = [await s.checkpoint(8)]
    await editRow(s.store, 5, 'someone.else')
    const err = await rejection(exportEvidence(s.store, { eventId: s.events[4]!.event_id, checkpoints, publicKeyPem: KEY.pem }))
    expect(err.code).toBe('EVIDENCE_CHAIN_BROKEN')
    expect(err.details).toMatchObject({ chain_id: CHAIN, seq: 5 })
  })

  it('refuses a deleted row between the event and the checkpoint', async () => {
    const s = await seeded()
    const checkpoints = [await s.checkpoint(8)]
    await s.store.client.command({
      query: `ALTER TABLE ${s.store.table('access_log')} DELETE WHERE chain_id = {chain_id:String} AND seq = {seq:UInt64} SETTINGS mutations_sync = 2`,
      query_params: { chain_id: CHAIN, seq: 6 },
    })
    const err = await rejection(exportEvidence(s.store, { eventId: s.events[4]!.event_id, checkpoints, publicKeyPem: KEY.pem }))
    expect(err.code).toBe('EVIDENCE_CHAIN_BROKEN')
    expect(err.details).toMatchObject({ chain_id: CHAIN, seq: 6 })
  })

  it('refuses when the signed hash does not match the stored rows', async () => {
    const s = await seeded()
    const wrong = await s.checkpoint(8, { overrides: { hash: 'ab'.repeat(32) } })
    const err = await rejection(exportEvidence(s.store, { eventId: s.events[4]!.event_id, checkpoints: [wrong], publicKeyPem: KEY.pem }))
    expect(err.code).toBe('EVIDENCE_CHAIN_BROKEN')
    expect(err.details).toMatchObject({ chain_id: CHAIN, seq: 8 })
  })

  it('EVIDENCE_NOT_COVERED (retriable) when no checkpoint of this key reaches the event', async () => {
    const s = await seeded()
    const checkpoints = [await s.checkpoint(3), await s.checkpoint(9, { key: newKey() })]
    const err = await rejection(exportEvidence(s.store, { eventId: s.events[4]!.event_id, checkpoints, publicKeyPem: KEY.pem }))
    expect(err.code).toBe('EVIDENCE_NOT_COVERED')
    expect(err.retriable).toBe(true)
    expect(err.details).toMatchObject({ chain_id: CHAIN, seq: 5, newest_checkpoint_seq: 3 })
  })

  it('EVIDENCE_NOT_FOUND for an unknown id or one that is not a UUID', async () => {
    const s = await seeded()
    const checkpoints = [await s.checkpoint(10)]
    for (const eventId of ['01890000-0000-7000-8000-000000000000', 'not-a-uuid', "' OR 1=1 --"]) {
      const err = await rejection(exportEvidence(s.store, { eventId, checkpoints, publicKeyPem: KEY.pem }))
      expect(err.code).toBe('EVIDENCE_NOT_FOUND')
    }
  })

  it('EVIDENCE_CHAIN_BROKEN naming both rows when an event id is stored twice', async () => {
    const s = await seeded()
    const twin = s.events[4]!.event_id
    await seedChain(s.store, 'access-events/1', 2, (i) => (i === 1 ? { event_id: twin } : {}))
    const err = await rejection(exportEvidence(s.store, { eventId: twin, checkpoints: [await s.checkpoint(10)], publicKeyPem: KEY.pem }))
    expect(err.code).toBe('EVIDENCE_CHAIN_BROKEN')
    expect(err.details?.['rows']).toEqual([
      { chain_id: CHAIN, seq: 5 },
      { chain_id: 'access-events/1', seq: 2 },
    ])
    expect(err.message).toContain('seq 5')
    expect(err.message).toContain('seq 2')
  })
})

describe('evidence commands', () => {
  it('export writes a 0600 file it never overwrites; verify proves it against the trusted key (exit 0), not without one (exit 3), and refuses a tampered copy (exit 1)', async () => {
    const s = await seeded()
    const event = s.events[2]!
    const out = join(workDir, `bundle-${event.event_id}.json`)
    const checkpoints = [await s.checkpoint(6)]
    const exportOut = collector()
    expect(await evidenceExportCommand(s.store, { eventId: event.event_id, out, checkpoints, publicKeyPem: KEY.pem }, exportOut.stream)).toBe(0)
    expect(statSync(out).mode & 0o777).toBe(0o600)
    expect(exportOut.text()).toContain(`Wrote ${out}`)
    expect(exportOut.text()).toContain(`row seq 3 of chain ${CHAIN}`)
    expect(exportOut.text()).toContain(KEY.keyId)

    const again = await rejection(evidenceExportCommand(s.store, { eventId: event.event_id, out, checkpoints, publicKeyPem: KEY.pem }, collector().stream))
    expect(again.code).toBe('OUTPUT_EXISTS')
    expect(again.message).toContain('already exists')

    const keyPath = join(workDir, `key-${event.event_id}.pub`)
    writeFileSync(keyPath, KEY.pem)
    const human = collector()
    expect(await evidenceVerifyCommand({ file: out, publicKeyPath: keyPath, json: false }, human.stream)).toBe(0)
    expect(human.text()).toMatch(/^PROVED: /)
    expect(human.text()).toContain(`key ${KEY.keyId} is the trusted public key`)

    const json = collector()
    expect(await evidenceVerifyCommand({ file: out, publicKeyPath: keyPath, json: true }, json.stream)).toBe(0)
    expect(JSON.parse(json.text())).toMatchObject({ ok: true, event: { event_id: event.event_id, seq: 3 } })

    // The default key counts where it exists; where it does not, the bundle's own key proves nothing.
    expect(await evidenceVerifyCommand({ file: out, defaultPublicKeyPath: keyPath, json: false }, collector().stream)).toBe(0)
    const untrusted = collector()
    expect(await evidenceVerifyCommand({ file: out, defaultPublicKeyPath: join(workDir, 'absent.pub'), json: true }, untrusted.stream)).toBe(3)
    expect(JSON.parse(untrusted.text())).toMatchObject({ ok: false, code: 'EVIDENCE_KEY_UNTRUSTED', proved: [] })
    // An explicit key that is not there is the operator's error, not a verdict.
    expect((await rejection(evidenceVerifyCommand({ file: out, publicKeyPath: join(workDir, 'absent.pub'), json: false }, collector().stream))).code).toBe('CHECKPOINT_KEY_MISSING')

    const tampered = join(workDir, `tampered-${event.event_id}.json`)
    writeFileSync(tampered, readFileSync(out, 'utf8').replace('"appeal review"', '"routine check"'))
    const refused = collector()
    expect(await evidenceVerifyCommand({ file: tampered, publicKeyPath: keyPath, json: false }, refused.stream)).toBe(1)
    expect(refused.text()).toMatch(/^NOT PROVED: .*step event-hash failed/)

    const garbage = join(workDir, `garbage-${event.event_id}.json`)
    writeFileSync(garbage, '{"format": "readtrail-evidence-v1"')
    expect((await rejection(evidenceVerifyCommand({ file: garbage, json: false }, collector().stream))).code).toBe('EVIDENCE_INVALID')
  })

  it('export refuses an event id that is not a UUID before touching the store', async () => {
    const s = await seeded()
    const err = await rejection(evidenceExportCommand(s.store, { eventId: '../../etc/passwd', checkpoints: [], publicKeyPem: KEY.pem }, collector().stream))
    expect(err.code).toBe('USAGE')
  })
})

describe('evidence verify on the command line needs a trusted key', () => {
  const sha256 = (...parts: Uint8Array[]) => parts.reduce((h, p) => h.update(p), createHash('sha256')).digest()
  /** No default public key here: only --public-key or READTRAIL_CHECKPOINT_PUBLIC_KEY can pin the signer. */
  const noDefaultKey = { READTRAIL_CHECKPOINT_KEY: join(workDir, 'no-keys', 'checkpoint.key') }

  it('a row changed and re-signed with a key the bundle carries: exit 3 "untrusted key" alone, exit 1 against the operator key', async () => {
    const s = await seeded()
    const bundle = await exportEvidence(s.store, { eventId: s.events[4]!.event_id, checkpoints: [await s.checkpoint(8)], publicKeyPem: KEY.pem })
    // The insider frames another principal: edits the row, recomputes every
    // hash up to the checkpoint, signs it with a key of their own and ships
    // that key in the bundle, as the README's bundle format allows.
    const forger = newKey()
    const forged = structuredClone(bundle)
    forged.event.principal_id = 'innocent.clerk'
    const w = new RowBinaryWriter()
    writeCanonical(w, chainedRowOf(forged.event))
    let hash = sha256(w.view(0))
    forged.event.hash = hash.toString('hex')
    for (const row of forged.segment) hash = sha256(hash, Buffer.from(row.encoding, 'base64'))
    const { sig: _sig, ...body } = forged.checkpoint
    forged.checkpoint = signCheckpoint({ ...body, hash: hash.toString('hex'), key_id: forger.keyId }, forger.privateKey)
    forged.public_key = forger.pem
    forged.key_id = forger.keyId
    const file = join(workDir, 'forged.json')
    writeFileSync(file, serializeEvidenceBundle(forged))
    // Every other step holds: this is exactly what a bundle-carried key cannot rule out.
    expect(verifyEvidence(forged, { trustedKeyPem: forger.pem }).ok).toBe(true)

    const alone = await runCli(['evidence', 'verify', file], noDefaultKey)
    expect(alone.code, alone.stderr).toBe(3)
    expect(alone.stdout).toMatch(/^NOT PROVED: untrusted key: /)
    expect(alone.stdout).toContain(forger.keyId)
    expect(alone.stdout).not.toMatch(/^PROVED/m)
    const json = await runCli(['evidence', 'verify', file, '--json'], noDefaultKey)
    expect(json.code).toBe(3)
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, code: 'EVIDENCE_KEY_UNTRUSTED', proved: [] })

    const operatorKey = join(workDir, 'operator.pub')
    writeFileSync(operatorKey, KEY.pem)
    const pinned = await runCli(['evidence', 'verify', file, '--public-key', operatorKey], noDefaultKey)
    expect(pinned.code, pinned.stderr).toBe(1)
    expect(pinned.stdout).toMatch(/^NOT PROVED: .*step check-trusted-key failed/)
    // Configured instead of given: the same verdict.
    expect((await runCli(['evidence', 'verify', file], { ...noDefaultKey, READTRAIL_CHECKPOINT_PUBLIC_KEY: operatorKey })).code).toBe(1)
  })

  it('the genuine bundle: exit 0 with the right key (flag, variable or default path), 1 with a wrong trusted key, 3 with none', async () => {
    const s = await seeded()
    const bundle = await exportEvidence(s.store, { eventId: s.events[2]!.event_id, checkpoints: [await s.checkpoint(6)], publicKeyPem: KEY.pem })
    const file = join(workDir, 'genuine.json')
    writeFileSync(file, serializeEvidenceBundle(bundle))
    const operatorKey = join(workDir, 'right.pub')
    writeFileSync(operatorKey, KEY.pem)
    const right = await runCli(['evidence', 'verify', file, '--public-key', operatorKey], noDefaultKey)
    expect(right.code, right.stderr).toBe(0)
    expect(right.stdout).toMatch(/^PROVED: /)
    expect((await runCli(['evidence', 'verify', file], { ...noDefaultKey, READTRAIL_CHECKPOINT_PUBLIC_KEY: operatorKey })).code).toBe(0)
    // The default `<signing key>.pub`, offline and without a flag.
    const home = mkdtempSync(join(workDir, 'home-'))
    writeFileSync(join(home, 'checkpoint.key.pub'), KEY.pem)
    expect((await runCli(['evidence', 'verify', file], { READTRAIL_CHECKPOINT_KEY: join(home, 'checkpoint.key') })).code).toBe(0)

    const wrongKey = join(workDir, 'wrong.pub')
    writeFileSync(wrongKey, newKey().pem)
    const wrong = await runCli(['evidence', 'verify', file, '--public-key', wrongKey], noDefaultKey)
    expect(wrong.code).toBe(1)
    expect(wrong.stdout).toMatch(/^NOT PROVED: .*step check-trusted-key failed/)
    expect((await runCli(['evidence', 'verify', file], noDefaultKey)).code).toBe(3)
  })
})
