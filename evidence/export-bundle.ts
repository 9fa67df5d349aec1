import { createHash } from 'node:crypto'
import type { ClickHouseSettings } from '@clickhouse/client'
import { NO_CACHES } from '../integrity/no-caches.js'
import { isValidSignature, SignedCheckpoint } from '../checkpoints/checkpoint.js'
import { publicKeyFromPem } from '../checkpoints/keys.js'
import { describeError } from '../common/errors.js'
import { ACCESS_LOG_COLUMNS, writeCanonical } from '../store/access-log-columns.js'
import { RowBinaryWriter } from '../store/row-binary.js'
import type { Store } from '../store/store.js'
import { chainedRowOf, EVIDENCE_FORMAT, EVIDENCE_LIMITS, EvidenceEvent, ipText, type EvidenceBundle, type SegmentRow } from './bundle.js'
import { EvidenceError } from './errors.js'
import { verifyEvidence } from './verify-bundle.js'

export interface ExportEvidenceOptions {
  /** The event's id (a UUID, any case). */
  eventId: string
  /**
   * Signed checkpoints to choose from, e.g. the checkpoint log's contents.
   * Checkpoints of other databases or chains, malformed ones and ones whose
   * signature fails under `publicKeyPem` are ignored.
   */
  checkpoints: readonly SignedCheckpoint[]
  /** SPKI PEM of the Ed25519 key that signs checkpoints; the bundle carries it. */
  publicKeyPem: string
  /** Clock for `exported_at`. @default () => new Date() */
  now?: () => Date
}

// No caches (integrity/no-caches.ts: rows edited in place could be served
// from before the edit), and 64-bit integers as JSON numbers whatever the
// client's defaults: every one read here is a safe integer, and the offset
// is selected as text.
const SETTINGS: ClickHouseSettings = { ...NO_CACHES, output_format_json_quote_64bit_integers: 0 }

/** Rows read per query: bounds memory on a long segment, and each page is one key range of (chain_id, seq). */
const PAGE_ROWS = 10_000

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/**
 * Each column in the JSON form of the bundle's event: bytes as lowercase hex,
 * times as integer microseconds, 64-bit offsets as text. client_ip comes as
 * its 16 bytes and is turned into its one canonical text here, not in SQL.
 */
const SELECT_AS: Readonly<Record<string, string>> = {
  prev_hash: 'lower(hex(prev_hash))',
  kafka_offset: 'toString(kafka_offset)',
  ingested_at: 'toUnixTimestamp64Micro(ingested_at)',
  occurred_at: 'toUnixTimestamp64Micro(occurred_at)',
  event_id: 'toString(event_id)',
  read_id: 'toString(read_id)',
  session_hash: 'lower(hex(session_hash))',
  client_ip: 'lower(hex(client_ip))',
}

// Derived from the column list, so a column added there is read (and its
// absence from the bundle schema fails the strict parse) rather than dropped.
const ROW_SELECT = [...ACCESS_LOG_COLUMNS.map((c) => (SELECT_AS[c.name] ? `${SELECT_AS[c.name]} AS ${c.name}` : c.name)), 'lower(hex(hash)) AS hash'].join(', ')

type StoredRow = Omit<EvidenceEvent, 'client_ip'> & { client_ip: string | null }

/**
 * Builds an evidence bundle for one stored event: the event's row, every row
 * after it up to the first signed checkpoint that covers it, that checkpoint
 * and the key that signed it. Every row is re-encoded and re-hashed here and
 * each link checked, so a damaged store yields EVIDENCE_CHAIN_BROKEN and never
 * a bundle; the finished bundle is run through verifyEvidence before it is
 * returned.
 */
export async function exportEvidence(store: Store, options: ExportEvidenceOptions): Promise<EvidenceBundle> {
  const key = publicKeyFromPem(options.publicKeyPem)
  const eventId = options.eventId.trim().toLowerCase()
  if (!UUID.test(eventId)) {
    throw new EvidenceError('EVIDENCE_NOT_FOUND', `no event can have id ${JSON.stringify(options.eventId)}: event ids are UUIDs`, {
      details: { event_id: options.eventId },
    })
  }
  await store.checkSchema()
  const located = await locateEvent(store, eventId)

  const checkpoint = coveringCheckpoint(options.checkpoints, store.database, located, key)
  const rowsToWalk = checkpoint.seq - located.seq
  if (rowsToWalk > EVIDENCE_LIMITS.segmentRows) {
    throw new EvidenceError(
      'EVIDENCE_NOT_COVERED',
      `the nearest checkpoint covering event ${eventId} is ${rowsToWalk} rows after it, more than a bundle may carry (${EVIDENCE_LIMITS.segmentRows})`,
      { details: { chain_id: located.chain_id, seq: located.seq, checkpoint_seq: checkpoint.seq, max_rows: EVIDENCE_LIMITS.segmentRows } },
    )
  }

  const { event, segment } = await readSegment(store, located, checkpoint)
  const bundle: EvidenceBundle = {
    format: EVIDENCE_FORMAT,
    exported_at: (options.now ?? (() => new Date()))().toISOString(),
    database: store.database,
    event,
    segment,
    checkpoint,
    public_key: key.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    key_id: key.keyId,
  }
  // The walk above already proved each link; this runs the reader's own checks, so a
  // bundle is only ever handed out if the offline verifier accepts it.
  const verdict = verifyEvidence(bundle, { trustedKeyPem: bundle.public_key })
  if (!verdict.ok) {
    throw broken(located.chain_id, located.seq, `the exported bundle fails its own ${verdict.failed_step} check: ${verdict.problem}`)
  }
  return bundle
}

interface Located {
  chain_id: string
  seq: number
}

async function locateEvent(store: Store, eventId: string): Promise<Located> {
  const rows = await store.queryRows<{ chain_id: string; seq: number }>(
    `SELECT chain_id, seq FROM ${store.table('access_log')} WHERE event_id = {event_id:UUID} ORDER BY chain_id, seq LIMIT 2`,
    { event_id: eventId },
    SETTINGS,
  )
  const [first, second] = rows
  if (!first) {
    throw new EvidenceError('EVIDENCE_NOT_FOUND', `no event ${eventId} in database ${store.database}`, { details: { event_id: eventId, database: store.database } })
  }
  if (second) {
    // One event id, two rows: a copy was planted, or one was stored twice.
    // Either way the event cannot be named by one row.
    const where = [first, second].map((r) => `${JSON.stringify(r.chain_id)} seq ${r.seq}`).join(' and ')
    throw new EvidenceError('EVIDENCE_CHAIN_BROKEN', `event ${eventId} is stored more than once (${where}); no bundle was written (run readtrail verify)`, {
      details: { chain_id: first.chain_id, seq: Number(first.seq), event_id: eventId, rows: [first, second].map((r) => ({ chain_id: r.chain_id, seq: Number(r.seq) })) },
    })
  }
  return { chain_id: first.chain_id, seq: Number(first.seq) }
}

/** The checkpoint nearest after the row: the shortest segment that reaches a signature. */
function coveringCheckpoint(
  checkpoints: readonly SignedCheckpoint[],
  database: string,
  row: Located,
  key: ReturnType<typeof publicKeyFromPem>,
): SignedCheckpoint {
  let best: SignedCheckpoint | undefined
  let newest: number | null = null
  for (const candidate of checkpoints) {
    // Checkpoints come from a file anyone with disk access could have edited: each is re-checked.
    const parsed = SignedCheckpoint.safeParse(candidate)
    if (!parsed.success) continue
    const cp = parsed.data
    if (cp.database !== database || cp.chain_id !== row.chain_id || cp.key_id !== key.keyId || !isValidSignature(cp, key.publicKey)) continue
    newest = Math.max(newest ?? 0, cp.seq)
    if (cp.seq < row.seq) continue
    if (!best || cp.seq < best.seq || (cp.seq === best.seq && cp.index < best.index)) best = cp
  }
  if (!best) {
    const last = newest === null ? 'it has no checkpoint signed by this key yet' : `its newest checkpoint is at seq ${newest}`
    throw new EvidenceError(
      'EVIDENCE_NOT_COVERED',
      `no signed checkpoint covers seq ${row.seq} of chain ${JSON.stringify(row.chain_id)} (${last}); export again after the next checkpoint`,
      { details: { chain_id: row.chain_id, seq: row.seq, newest_checkpoint_seq: newest } },
    )
  }
  return best
}

/**
 * Reads rows row.seq..checkpoint.seq in seq order, re-hashing each and
 * checking every link, and returns the event's JSON and the encodings of the
 * rows after it.
 */
async function readSegment(store: Store, row: Located, cp: SignedCheckpoint): Promise<{ event: EvidenceEvent; segment: SegmentRow[] }> {
  const w = new RowBinaryWriter()
  const segment: SegmentRow[] = []
  let event: EvidenceEvent | undefined
  let prev: Buffer | undefined
  let expected = row.seq
  let lastOffset = ''
  for (let from = row.seq; from <= cp.seq; from += PAGE_ROWS) {
    const to = Math.min(cp.seq, from + PAGE_ROWS - 1)
    const page = await store.queryRows<StoredRow>(
      `SELECT ${ROW_SELECT} FROM ${store.table('access_log')}
       WHERE chain_id = {chain_id:String} AND seq BETWEEN {from:UInt64} AND {to:UInt64}
       ORDER BY seq`,
      { chain_id: row.chain_id, from, to },
      SETTINGS,
    )
    for (const stored of page) {
      const seq = Number(stored.seq)
      if (seq < expected) throw broken(row.chain_id, seq, `seq ${seq} is stored more than once`)
      if (seq > expected) throw broken(row.chain_id, expected, seq - expected === 1 ? `seq ${expected} is missing` : `seqs ${expected}..${seq - 1} are missing`)
      const ip = stored.client_ip === null ? null : Buffer.from(stored.client_ip, 'hex')
      if (ip !== null && ip.length !== 16) throw broken(row.chain_id, seq, `client_ip is ${ip.length} bytes, not 16`)
      const parsed = EvidenceEvent.safeParse({ ...stored, client_ip: ip === null ? null : ipText(ip) })
      if (!parsed.success) throw broken(row.chain_id, seq, `the stored row is not a valid access_log row (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message})`)
      const json = parsed.data
      w.reset()
      try {
        writeCanonical(w, chainedRowOf(json))
      } catch (cause) {
        throw broken(row.chain_id, seq, `the stored row cannot be encoded: ${describeError(cause)}`)
      }
      const hash = createHash('sha256').update(w.view(0)).digest()
      if (hash.toString('hex') !== json.hash) throw broken(row.chain_id, seq, 'the stored columns do not hash to the stored hash (the row was edited)')
      if (prev && !prev.equals(w.view(0, 32))) throw broken(row.chain_id, seq, `prev_hash does not match the hash of seq ${seq - 1}`)
      if (event === undefined) event = json
      else segment.push({ seq, encoding: w.view(32).toString('base64') })
      prev = hash
      lastOffset = json.kafka_offset
      expected = seq + 1
    }
  }
  if (!event || !prev || expected !== cp.seq + 1) {
    throw broken(row.chain_id, expected, expected === cp.seq ? `seq ${expected} is missing` : `seqs ${expected}..${cp.seq} are missing`)
  }
  if (prev.toString('hex') !== cp.hash) {
    throw broken(row.chain_id, cp.seq, `the stored rows hash to ${prev.toString('hex')} at seq ${cp.seq}, but checkpoint #${cp.index} signed ${cp.hash}`)
  }
  if (lastOffset !== cp.kafka_offset) {
    throw broken(row.chain_id, cp.seq, `seq ${cp.seq} has Kafka offset ${lastOffset}, but checkpoint #${cp.index} signed offset ${cp.kafka_offset}`)
  }
  return { event, segment }
}

function broken(chainId: string, seq: number, what: string): EvidenceError {
  return new EvidenceError('EVIDENCE_CHAIN_BROKEN', `chain ${JSON.stringify(chainId)} is broken at seq ${seq}: ${what}; no bundle was written (run readtrail verify)`, {
    details: { chain_id: chainId, seq },
  })
}
