import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { emptyChain, linkEntries } from '../../consumers/chain.js'
import { STORED_COLUMN_NAMES } from '../../store/access-log-columns.js'
import { StoreConfig } from '../../store/config.js'
import { isDataError, StoreError } from '../../store/errors.js'
import { openStore, type Store } from '../../store/store.js'
import { makeEvent } from '../helpers/events.js'
import { thrown } from '../helpers/thrown.js'

/** What the stand-in server received, one entry per request. */
interface Received {
  method: string | undefined
  query: string | null
  params: Record<string, string>
  body: Buffer
}

/**
 * No ClickHouse server runs where these tests run: a local HTTP server
 * stands in for one, records what the client sends and answers as
 * ClickHouse's HTTP interface would (200 with an empty body, or an error
 * with the exception code header). It proves the request, not that a real
 * server accepts it; the RowBinary bytes themselves are proved against the
 * embedded engine (test/integration/store-row-binary.test.ts).
 */
describe('insertRowBinary against a ClickHouse server (HTTP)', () => {
  const received: Received[] = []
  let answer: (req: IncomingMessage) => { status: number; headers?: Record<string, string>; body: string } = () => ({ status: 200, body: '' })
  let server: Server
  let store: Store

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://stand-in')
        received.push({ method: req.method, query: url.searchParams.get('query'), params: Object.fromEntries(url.searchParams), body: Buffer.concat(chunks) })
        const a = answer(req)
        res.writeHead(a.status, { 'Content-Type': 'text/plain', ...a.headers })
        res.end(a.body)
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    store = openStore(StoreConfig.parse({ url: `http://127.0.0.1:${port}`, database: 'rt_server' }), { command: 'vitest' })
  })
  afterAll(async () => {
    await store.close()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  beforeEach(() => {
    received.length = 0
    answer = () => ({ status: 200, body: '' })
  })

  const linked = linkEntries(emptyChain('srv/0'), Array.from({ length: 5 }, (_, i) => ({ event: makeEvent(), offset: BigInt(i), schemaVersion: 1 })), 1_795_000_000_000_001)

  it('POSTs one request: the INSERT with its column list in the URL, the rows as the body byte for byte', async () => {
    await store.insertRowBinary('access_log', linked.rows, linked.count)
    expect(received).toHaveLength(1)
    const [req] = received
    expect(req!.method).toBe('POST')
    expect(req!.query).toBe(`INSERT INTO \`rt_server\`.\`access_log\` (${STORED_COLUMN_NAMES.map((c) => `\`${c}\``).join(', ')}) FORMAT RowBinary`)
    expect(req!.body.equals(linked.rows)).toBe(true)
    // The store's own settings ride along; nothing turns the body into text.
    expect(req!.params).toMatchObject({ output_format_json_quote_64bit_integers: '0', date_time_output_format: 'iso' })
  })

  it('names the columns it is given, quoted, for another table', async () => {
    await store.insertRowBinary('other_table', linked.rows, linked.count, ['a', 'b_2'])
    expect(received[0]!.query).toBe('INSERT INTO `rt_server`.`other_table` (`a`, `b_2`) FORMAT RowBinary')
  })

  it('sends nothing for no rows', async () => {
    await store.insertRowBinary('access_log', Buffer.alloc(0), 0)
    expect(received).toEqual([])
  })

  it('refuses a column name that is not a plain identifier before sending anything', async () => {
    await expect(store.insertRowBinary('access_log', linked.rows, linked.count, ['hash) SELECT 1 --'])).rejects.toThrow(RangeError)
    expect(received).toEqual([])
  })

  it('a row the server refuses is STORE_REJECTED, a data error the writer stores one by one', async () => {
    answer = () => ({
      status: 400,
      headers: { 'X-ClickHouse-Exception-Code': '33' },
      body: 'Code: 33. DB::Exception: Cannot read all data. Bytes read: 3. Bytes expected: 9.: (at row 5)\n: While executing BinaryRowInputFormat. (CANNOT_READ_ALL_DATA) (version 25.8.1.1)\n',
    })
    const err = await thrown(store.insertRowBinary('access_log', linked.rows, linked.count))
    expect(err).toBeInstanceOf(StoreError)
    expect((err as StoreError).code).toBe('STORE_REJECTED')
    expect((err as StoreError).details).toMatchObject({ clickhouse_error_type: 'CANNOT_READ_ALL_DATA', table: 'access_log', rows: 5 })
    expect(isDataError(err)).toBe(true)
  })

  it('a refusal for the server\'s own state (a read-only table) is STORE_UNAVAILABLE, which the writer retries', async () => {
    answer = () => ({ status: 503, headers: { 'X-ClickHouse-Exception-Code': '242' }, body: 'Code: 242. DB::Exception: Table is in readonly mode. (TABLE_IS_READ_ONLY) (version 25.8.1.1)\n' })
    const err = await thrown(store.insertRowBinary('access_log', linked.rows, linked.count))
    expect((err as StoreError).code).toBe('STORE_UNAVAILABLE')
    expect(isDataError(err)).toBe(false)
  })
})
