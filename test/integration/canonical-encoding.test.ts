import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { emptyChain, linkEntries } from '../../consumers/chain.js'
import { ACCESS_LOG_COLUMNS, HASH_SQL, writeCanonical, type ChainedRow } from '../../store/access-log-columns.js'
import { RowBinaryWriter } from '../../store/row-binary.js'
import { chainedRow } from '../helpers/chained-row.js'
import { makeEvent } from '../helpers/events.js'
import { openTestStore } from '../helpers/store.js'

/**
 * The chain hash is only checkable inside ClickHouse if our RowBinary bytes
 * are exactly the bytes formatRow('RowBinary', …) produces. Rows
 * with edge values go in through the real ingest path and come back hashed by
 * ClickHouse.
 */
describe('canonical encoding equals ClickHouse RowBinary', () => {
  const edgeRows: Partial<ChainedRow>[] = [
    {},
    {
      principal_id: 'Zoë 🦊 — 東京',
      on_behalf_of: 'case-officer "x" \\ \n tab\t',
      session_hash: Buffer.alloc(32, 0xff),
      client_ip: '2001:db8:85a3::8a2e:370:7334',
      columns: [],
      record_ids: [],
      record_ids_complete: false,
      row_count: 2 ** 53 - 2,
      purpose: '',
      trace_id: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      principal_type: 'system',
      action: 'export',
      outcome: 'denied',
      producer_seq: 2 ** 40,
      part_index: 3,
      part_count: 4,
    },
    { client_ip: '255.255.255.255', session_hash: Buffer.alloc(32, 0), record_ids: ['', 'x'.repeat(300), 'é'], principal_type: 'service', action: 'search', outcome: 'error', occurred_at: 0 },
    { client_ip: '::', query_fingerprint: 'SELECT ? FROM "t" WHERE a IN (?+)' },
  ]

  it('every column, for every edge row, as ClickHouse re-hashes it', async () => {
    const store = await openTestStore()
    const events = edgeRows.map((overrides) => makeEvent(overrides))
    const offsets = [0n, 2n ** 63n, 18446744073709551615n, 7n]
    // Event places and producer keys at their edges: wire 1's defaults, the last event of the largest UInt32 message, a middle one, a first one.
    const places = [
      {},
      { index: 2 ** 32 - 2, events: 2 ** 32 - 1, keyId: 'f'.repeat(64) },
      { index: 2, events: 5, keyId: '0123456789abcdef'.repeat(4) },
      { index: 0, events: 2, keyId: '' },
    ]
    const linked = linkEntries(emptyChain('edge/0'), events.map((event, i) => ({ event, offset: offsets[i]!, ...places[i]!, schemaVersion: 65535 })), 1_795_000_000_123_456)
    await store.insertRowBinary('access_log', linked.rows, linked.count)

    const rows = await store.queryRows<{ seq: number; stored: string; recomputed: string }>(
      `SELECT seq, hex(hash) AS stored, hex(${HASH_SQL}) AS recomputed FROM ${store.table('access_log')} ORDER BY seq`,
    )
    expect(rows).toHaveLength(edgeRows.length)
    for (const r of rows) expect(r.recomputed).toBe(r.stored)
    expect(rows.at(-1)!.stored.toLowerCase()).toBe(linked.head.hash.toString('hex'))
  })

  it('column by column: our bytes equal formatRow of the stored value', async () => {
    const store = await openTestStore()
    const event = makeEvent(edgeRows[1])
    // Event 3 of a signed batch of 5: every column holds a value other than its default.
    const keyId = '0123456789abcdef'.repeat(4)
    const linked = linkEntries(emptyChain('edge/1'), [{ event, offset: 9n, index: 2, events: 5, keyId, schemaVersion: 2 }], 1_795_000_000_000_001)
    await store.insertRowBinary('access_log', linked.rows, linked.count)
    const row: ChainedRow = chainedRow(event, {
      chain_id: 'edge/1',
      seq: 1,
      prev_hash: Buffer.alloc(32),
      kafka_offset: 9n,
      message_index: 2,
      message_events: 5,
      ingested_at: 1_795_000_000_000_001,
      schema_version: 2,
      key_id: keyId,
    })
    const select = ACCESS_LOG_COLUMNS.map((c) => `hex(formatRow('RowBinary', ${c.name})) AS ${c.name}`).join(', ')
    const [stored] = await store.queryRows<Record<string, string>>(`SELECT ${select} FROM ${store.table('access_log')}`)
    const [read] = await store.queryRows<{ message_index: number; message_events: number; key_id: string }>(`SELECT message_index, message_events, key_id FROM ${store.table('access_log')}`)
    expect(read).toEqual({ message_index: 2, message_events: 5, key_id: keyId })
    for (const column of ACCESS_LOG_COLUMNS) {
      const w = new RowBinaryWriter()
      column.write(w, row)
      expect(w.slice(0).toString('hex').toUpperCase(), column.name).toBe(stored![column.name])
    }
    const w = new RowBinaryWriter()
    writeCanonical(w, row)
    expect(createHash('sha256').update(w.slice(0)).digest().equals(linked.head.hash)).toBe(true)
  })
})
