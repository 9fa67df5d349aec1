/**
 * How a log separates its entries: one per line (jsonlog, server_audit, which
 * escape newlines), or CSV records, where a quoted field may span lines
 * (csvlog: a statement with newlines).
 */
export type Framing = 'line' | 'csv'

/** One complete entry of the log, without its newline, at byte `offset`; the next begins at `end`. */
export interface FramedRecord {
  kind: 'record'
  bytes: Buffer
  offset: number
  end: number
}

/** An entry longer than the bound: its bytes were dropped unread, only its place is known. */
export interface OversizeRecord {
  kind: 'oversize'
  offset: number
  end: number
}

export type FramedItem = FramedRecord | OversizeRecord

const NEWLINE = 0x0a
const QUOTE = 0x22

/**
 * Cuts a byte stream into records, holding at most `maxRecordBytes` of one
 * record: the log is hostile input (an attacker controls statement text,
 * and a 1 GB statement is legal SQL), so an entry longer than the bound is
 * scanned to its end without keeping its bytes and reported as oversize.
 * A CSV record with an unterminated quote never ends: it stays pending
 * (bounded the same way) until the file is finished, when the caller
 * reports it as truncated.
 */
export class RecordFramer {
  private parts: Buffer[] = []
  private held = 0
  private inQuotes = false
  private skipping = false
  private recordStart: number
  private scanned: number

  constructor(
    private readonly framing: Framing,
    private readonly maxRecordBytes: number,
    /** Byte offset of the first byte pushed: always the start of a record. */
    start: number,
  ) {
    this.recordStart = start
    this.scanned = start
  }

  /** Offset the next pushed byte has. */
  get position(): number {
    return this.scanned
  }

  /** Offset where the record not yet complete begins: everything before it was handed out. */
  get consumed(): number {
    return this.recordStart
  }

  /** Bytes of an incomplete record seen so far (kept or skipped). */
  get pendingBytes(): number {
    return this.scanned - this.recordStart
  }

  push(chunk: Buffer): FramedItem[] {
    const items: FramedItem[] = []
    let from = 0
    while (from < chunk.length) {
      const end = this.findRecordEnd(chunk, from)
      if (end < 0) {
        this.keep(chunk.subarray(from))
        this.scanned += chunk.length - from
        break
      }
      this.keep(chunk.subarray(from, end))
      this.scanned += end + 1 - from
      from = end + 1
      const item = this.finishRecord()
      if (item) items.push(item)
    }
    return items
  }

  /** The index of the newline ending the current record in chunk[from..], or -1; tracks CSV quoting. */
  private findRecordEnd(chunk: Buffer, from: number): number {
    if (this.framing === 'line') return chunk.indexOf(NEWLINE, from)
    let i = from
    while (i < chunk.length) {
      if (this.inQuotes) {
        const q = chunk.indexOf(QUOTE, i)
        if (q < 0) return -1
        // A doubled quote inside a quoted field toggles twice: the net state is unchanged.
        this.inQuotes = false
        i = q + 1
        continue
      }
      const q = chunk.indexOf(QUOTE, i)
      const n = chunk.indexOf(NEWLINE, i)
      if (n >= 0 && (q < 0 || n < q)) return n
      if (q < 0) return -1
      this.inQuotes = true
      i = q + 1
    }
    return -1
  }

  private keep(bytes: Buffer): void {
    if (bytes.length === 0 || this.skipping) return
    if (this.held + bytes.length > this.maxRecordBytes) {
      this.skipping = true
      this.parts = []
      this.held = 0
      return
    }
    // A copy: the chunk buffer is reused by the reader.
    this.parts.push(Buffer.from(bytes))
    this.held += bytes.length
  }

  private finishRecord(): FramedItem | undefined {
    const offset = this.recordStart
    const end = this.scanned
    this.recordStart = end
    const skipped = this.skipping
    const bytes = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.held)
    this.parts = []
    this.held = 0
    this.skipping = false
    this.inQuotes = false
    if (skipped) return { kind: 'oversize', offset, end }
    if (bytes.length === 0 || (bytes.length === 1 && bytes[0] === 0x0d)) return undefined
    return { kind: 'record', bytes, offset, end }
  }
}
