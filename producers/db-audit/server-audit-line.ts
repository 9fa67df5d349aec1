/** One line of MariaDB's server_audit file log. */
export type ServerAuditLine =
  | { kind: 'query'; header: ServerAuditHeader; statement: Buffer }
  | { kind: 'table'; header: ServerAuditHeader; operation: string; table: string }
  | { kind: 'connection'; header: ServerAuditHeader; operation: string }

export interface ServerAuditHeader {
  /** µs since the epoch (the log has whole seconds, written in the server's local time: UTC by the scripts' set-up). */
  loggedAt: number
  user: string
  host: string
  connectionId: string
  queryId: string
  database: string
}

const TABLE_OPERATIONS = new Set(['READ', 'WRITE', 'CREATE', 'ALTER', 'RENAME', 'DROP'])
const CONNECTION_OPERATIONS = new Set(['CONNECT', 'DISCONNECT', 'FAILED_CONNECT', 'CHANGEUSER'])
const HEADER = /^(\d{4})(\d{2})(\d{2}) (\d{2}):(\d{2}):(\d{2}),([^,]*),([^,]*),([^,]*),(\d{1,20}),(\d{1,20}),([A-Z_]{1,20}),([^,]*),/

/**
 * Parses `YYYYMMDD HH:MM:SS,serverhost,user,host,connection id,query id,
 * operation,database,object,retcode`. For QUERY the object is the statement
 * in single quotes with server_audit's escapes (\\ \' \n \r \t), undone here
 * so the bytes are the ones the client sent. Fields before the object are
 * taken to hold no comma (a user or database named with one is refused, as
 * its line cannot be split without guessing). Returns undefined when the
 * line is not in that form; `utcOffsetMinutes` is the server's zone.
 */
export function parseServerAuditLine(line: Buffer, utcOffsetMinutes: number): ServerAuditLine | undefined {
  // The header is ASCII digits and names; latin1 keeps one char per byte so indexes match.
  const head = line.toString('latin1', 0, Math.min(line.length, 2048))
  const m = HEADER.exec(head)
  if (!m) return undefined
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]))
  if (!Number.isFinite(ms)) return undefined
  const utf8 = (s: string) => Buffer.from(s, 'latin1').toString('utf8')
  const header: ServerAuditHeader = {
    loggedAt: (ms - utcOffsetMinutes * 60_000) * 1000,
    user: utf8(m[8]!),
    host: utf8(m[9]!),
    connectionId: m[10]!,
    queryId: m[11]!,
    database: utf8(m[13]!),
  }
  const operation = m[12]!
  const rest = line.subarray(m[0].length)
  if (operation === 'QUERY') {
    const statement = unquoteStatement(rest)
    return statement ? { kind: 'query', header, statement } : undefined
  }
  if (TABLE_OPERATIONS.has(operation)) {
    // `table,` : the retcode is empty on table lines; a table name may hold a comma, so cut at the last one.
    if (rest[rest.length - 1] !== 0x2c) return undefined
    const table = rest.subarray(0, rest.length - 1).toString('utf8')
    return table.length > 0 ? { kind: 'table', header, operation, table } : undefined
  }
  if (CONNECTION_OPERATIONS.has(operation)) return { kind: 'connection', header, operation }
  return undefined
}

/** `'escaped text',retcode` → the text's bytes, or undefined if it is not exactly that. */
function unquoteStatement(rest: Buffer): Buffer | undefined {
  const tail = /',(-?\d{1,10})$/.exec(rest.toString('latin1', Math.max(0, rest.length - 16)))
  if (rest[0] !== 0x27 || !tail) return undefined
  const body = rest.subarray(1, rest.length - tail[0].length)
  const out = Buffer.allocUnsafe(body.length)
  let n = 0
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!
    if (c === 0x27) return undefined
    if (c !== 0x5c) {
      out[n++] = c
      continue
    }
    const e = body[++i]
    if (e === 0x5c || e === 0x27) out[n++] = e
    else if (e === 0x6e) out[n++] = 0x0a
    else if (e === 0x72) out[n++] = 0x0d
    else if (e === 0x74) out[n++] = 0x09
    else return undefined
  }
  return Buffer.from(out.subarray(0, n))
}
