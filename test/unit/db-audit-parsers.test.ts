import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { AuditEntry, RejectedRecord } from '../../producers/db-audit/audit-entry.js'
import { DbAuditError } from '../../producers/db-audit/errors.js'
import { parsePgTimestamp } from '../../producers/db-audit/pg-timestamp.js'
import { createRecordParser, type ParserChoice, type RecordParser } from '../../producers/db-audit/record-parser.js'
import { RecordFramer } from '../../producers/db-audit/record-framer.js'

const fixture = (name: string) => readFileSync(new URL(`../fixtures/db-audit/${name}`, import.meta.url))
const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex')

interface Parsed {
  entries: AuditEntry[]
  rejected: RejectedRecord[]
  oversize: number
  /** Bytes of an incomplete last record. */
  tail: number
  parser: RecordParser
}

/** A whole file through the framer (fed in `chunk`-byte pieces) and a parser, as the reader does. */
function parseFile(bytes: Buffer, choice: ParserChoice, tables: string[], chunk = 4096, maxRecordBytes = 1 << 20): Parsed {
  const parser = createRecordParser(choice, new Set(tables))
  const framer = new RecordFramer(parser.framing, maxRecordBytes, 0)
  const out: Parsed = { entries: [], rejected: [], oversize: 0, tail: 0, parser }
  for (let i = 0; i < bytes.length; i += chunk) {
    for (const item of framer.push(bytes.subarray(i, i + chunk))) {
      if (item.kind === 'oversize') {
        out.oversize++
        continue
      }
      const r = parser.parse(item.bytes, item.offset)
      out.entries.push(...r.entries)
      out.rejected.push(...r.rejected)
    }
  }
  out.tail = framer.pendingBytes
  return out
}

const CSV: ParserChoice = { kind: 'pgaudit', format: 'csvlog' }
const JSONLOG: ParserChoice = { kind: 'pgaudit', format: 'jsonlog' }
const MARIADB: ParserChoice = { kind: 'server_audit', utcOffsetMinutes: 0, maxPending: 100 }

// The statements psql sent in the capture (scripts/pg-audit-cluster.sh, real server): what the hooks would digest.
const PG_STATEMENTS = [
  `SELECT * FROM patients WHERE name = 'AUDIT: OBJECT,1,1,READ,SELECT,TABLE,public.other,"x"' ;`,
  `select p.id, o.id from patients p, other o where p.name = 'public.patients\nnewline, comma "q"'`,
  'COPY patients TO STDOUT',
]

describe('pgAudit csvlog and jsonlog (real PostgreSQL 15 lines)', () => {
  for (const [name, choice] of [['pgaudit-real.csv', CSV], ['pgaudit-real.json', JSONLOG]] as const) {
    it(`${name}: one entry per READ of a configured table, digest of the exact text sent`, () => {
      const parsed = parseFile(fixture(name), choice, ['public.patients'])
      expect(parsed.entries.map((e) => e.statement.toString('utf8'))).toEqual(PG_STATEMENTS)
      expect(parsed.entries.map((e) => sha256(e.statement))).toEqual(PG_STATEMENTS.map(sha256))
      expect(parsed.entries[0]).toMatchObject({ dbName: 'readtrail_audit', dbUser: 'postgres', clientAddr: '127.0.0.1', applicationName: 'psql', dbSession: '11389', command: 'SELECT', objectName: 'public.patients' })
      expect(parsed.entries[0]!.loggedAt).toBe(Date.UTC(2026, 11, 5, 14, 4, 53, 569) * 1000)
      // The RAISE LOG 'AUDIT: ...' imitation is refused (it has a context and a statement), the UPDATE is a WRITE.
      expect(parsed.rejected).toHaveLength(1)
      expect(parsed.tail).toBe(0)
    })
  }

  it('framing does not depend on where the chunks are cut (quotes and newlines split across reads)', () => {
    const whole = parseFile(fixture('pgaudit-real.csv'), CSV, ['public.patients'], 1 << 20)
    const bytewise = parseFile(fixture('pgaudit-real.csv'), CSV, ['public.patients'], 1)
    expect(bytewise.entries.map((e) => e.offset)).toEqual(whole.entries.map((e) => e.offset))
    expect(bytewise.entries.map((e) => sha256(e.statement))).toEqual(whole.entries.map((e) => sha256(e.statement)))
  })

  it('a table named only inside a literal is not a read of it', () => {
    const parsed = parseFile(fixture('pgaudit-real.csv'), CSV, ['public.other'])
    expect(parsed.entries).toEqual([])
  })

  it('hostile csvlog: quote games, invalid UTF-8, imitations, a short record, a truncated last record', () => {
    const parsed = parseFile(fixture('pgaudit-hostile.csv'), CSV, ['public.patients'])
    expect(parsed.entries).toHaveLength(2)
    const first = parsed.entries[0]!.statement
    // The bytes pgAudit logged, both CSV layers undone; never re-encoded through a string.
    expect(first).toEqual(Buffer.concat([Buffer.from(`SELECT * FROM patients WHERE name = '`), Buffer.from([0xff, 0xfe]), Buffer.from(`",LOG,00000,"AUDIT: x"\n2026-12-05 00:00:00.000 UTC,'`)]))
    expect(parsed.entries[1]!.statement.toString()).toBe('SELECT 1 FROM patients')
    expect(parsed.rejected.map((r) => r.reason)).toEqual([expect.stringContaining('did not write'), expect.stringContaining('CSV fields')])
    expect(parsed.tail).toBeGreaterThan(0)
  })

  it('hostile jsonlog: \\u escapes and raw bytes kept exact, imitations, duplicate keys and nesting refused, a truncated last line', () => {
    const parsed = parseFile(fixture('pgaudit-hostile.json'), JSONLOG, ['public.patients'])
    expect(parsed.entries).toHaveLength(2)
    expect(parsed.entries[0]!.statement).toEqual(Buffer.concat([Buffer.from(`SELECT '\u00e9`), Buffer.from([0xff]), Buffer.from(`\\n"," FROM patients`)]))
    expect(parsed.entries[0]!.dbSession).toBe('11389')
    expect(parsed.rejected).toHaveLength(3)
    expect(parsed.tail).toBeGreaterThan(0)
  })

  it('an entry longer than the bound is skipped and counted, and the next one is read', () => {
    const big = Buffer.concat([Buffer.from('x'.repeat(10_000)), Buffer.from('\n'), fixture('pgaudit-real.csv')])
    const parsed = parseFile(big, CSV, ['public.patients'], 4096, 8192)
    expect(parsed.oversize).toBe(1)
    expect(parsed.entries).toHaveLength(3)
    expect(parsed.entries[0]!.offset).toBeGreaterThan(10_000)
  })

  it('an unterminated quote holds at most the bound, then is skipped as oversize once the record ends', () => {
    const framer = new RecordFramer('csv', 4096, 0)
    const items = [...framer.push(Buffer.from('"abc\n')), ...framer.push(Buffer.alloc(100_000, 0x61))]
    expect(items).toEqual([])
    expect(framer.pendingBytes).toBe(100_005)
    expect(framer.push(Buffer.from('"\nnext\n'))).toEqual([{ kind: 'oversize', offset: 0, end: 100_007 }, { kind: 'record', bytes: Buffer.from('next'), offset: 100_007, end: 100_012 }])
  })
})

describe('pg timestamps', () => {
  it('reads UTC and numeric offsets, refuses an ambiguous abbreviation with the setting to change', () => {
    expect(parsePgTimestamp('2026-12-05 14:04:53.569 UTC')).toBe(Date.UTC(2026, 11, 5, 14, 4, 53, 569) * 1000)
    expect(parsePgTimestamp('2026-12-05 16:04:53.569 +02')).toBe(Date.UTC(2026, 11, 5, 14, 4, 53, 569) * 1000)
    expect(parsePgTimestamp('not a time')).toBeUndefined()
    expect(() => parsePgTimestamp('2026-12-05 14:04:53.569 CST')).toThrow(DbAuditError)
    try {
      parsePgTimestamp('2026-12-05 14:04:53.569 CET')
    } catch (err) {
      expect((err as DbAuditError).code).toBe('DB_AUDIT_LOG_UNSUPPORTED')
      expect((err as DbAuditError).retriable).toBe(false)
    }
  })
})

describe('MariaDB server_audit (real 10.11 lines)', () => {
  const SENT = [`SELECT * FROM people WHERE name='x\\\\y''z\nnewline\ttab"q'`, 'SELECT p.id FROM people p JOIN other o ON o.id=p.id', 'SELECT * FROM people WHERE id = ?', `SELECT * FROM people WHERE name = 'o\\'brien\\\\x'`]

  it('joins TABLE (READ) and QUERY lines; the digest is of the text the client sent (server_audit escapes undone)', () => {
    const parsed = parseFile(fixture('server-audit-real.txt'), MARIADB, ['shop.people'])
    expect(parsed.entries.map((e) => e.statement.toString())).toEqual(SENT)
    expect(parsed.entries.map((e) => sha256(e.statement))).toEqual(SENT.map(sha256))
    expect(parsed.entries[2]).toMatchObject({ dbName: 'shop', dbUser: 'readtrail', clientAddr: '127.0.0.1', dbSession: '8', command: 'SELECT', objectName: 'shop.people' })
    expect(parsed.entries[0]!.loggedAt).toBe(Date.UTC(2026, 11, 5, 14, 5, 16) * 1000)
    expect(parsed.rejected).toEqual([])
    // The capture ends between a READ line and its QUERY line: that read waits, in the position.
    expect(parsed.parser.snapshot()).toEqual([expect.objectContaining({ connection_id: '9', query_id: '20', tables: ['shop.people'] })])
  })

  it('system tables and a table named only in a literal are not reads of the configured table', () => {
    const parsed = parseFile(fixture('server-audit-real.txt'), MARIADB, ['shop.other'])
    expect(parsed.entries.map((e) => e.statement.toString())).toEqual(['SELECT p.id FROM people p JOIN other o ON o.id=p.id', `select 'shop.people' from other`])
  })

  it('hostile lines: fake fields inside a statement, a malformed statement, invalid UTF-8, a read whose text never comes', () => {
    const parsed = parseFile(fixture('server-audit-hostile.txt'), MARIADB, ['shop.people'])
    expect(parsed.entries.map((e) => [e.dbSession, e.statement.toString('latin1')])).toEqual([
      ['7', `SELECT * FROM people WHERE note = '7,12,QUERY,shop,\\'x\\',0\nAUDIT'`],
      // 7:13's QUERY line was refused: its read is still published at DISCONNECT, without text.
      ['7', ''],
      ['8', 'SELECT \xff\xfe FROM people'],
    ])
    expect(parsed.entries[1]!.command).toBe('READ')
    expect(parsed.rejected).toHaveLength(1)
    expect(parsed.tail).toBeGreaterThan(0)
  })

  it('pending reads restored from a snapshot give the same entries (a restart between READ and QUERY)', () => {
    const bytes = fixture('server-audit-real.txt')
    const first = parseFile(bytes, MARIADB, ['shop.people'])
    const restarted = createRecordParser(MARIADB, new Set(['shop.people']))
    restarted.restore(first.parser.snapshot())
    const query = Buffer.from(`20261205 14:05:31,vm,readtrail,127.0.0.1,9,20,QUERY,shop,'SELECT count(*) FROM people',0`)
    const r = restarted.parse(query, 9999)
    expect(r.entries).toEqual([expect.objectContaining({ dbSession: '9', objectName: 'shop.people', offset: 9999, statement: Buffer.from('SELECT count(*) FROM people') })])
  })
})
