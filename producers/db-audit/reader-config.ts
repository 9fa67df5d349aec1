import type { KeyObject } from 'node:crypto'
import { z } from 'zod'
import { parseConfig } from '../../common/config.js'
import { KafkaConnection } from '../../common/kafka.js'
import { LIMITS } from '../../schemas/access-event.js'
import { DB_AUDIT_SOURCE_KINDS } from '../../schemas/db-audit-event.js'
import { MAX_SIDE_EVENTS_PER_BATCH } from '../../schemas/side-batch.js'

export const PG_LOG_FORMATS = ['csvlog', 'jsonlog'] as const
export type PgLogFormat = (typeof PG_LOG_FORMATS)[number]

/** Defaults of the reader's options, in one place. */
export const DB_AUDIT_READER_DEFAULTS = Object.freeze({
  /** How long the reader sleeps at the end of the log before looking again. */
  pollIntervalMs: 500,
  /** Events per signed batch (the side batch format allows MAX_SIDE_EVENTS_PER_BATCH). */
  maxBatchEvents: 1000,
  /** Estimated encoded bytes per batch; kept under the topic's max.message.bytes as well. */
  maxBatchBytes: 900 * 1024,
  /** Longest log entry read; a longer one is skipped, counted and logged. */
  maxRecordBytes: 4 * 1024 * 1024,
  readChunkBytes: 256 * 1024,
  /** MariaDB statements whose QUERY line is awaited at most at once. */
  maxPendingStatements: 10_000,
  /** Where a reader with no position file starts: the oldest file's beginning, or the newest file's end. */
  startAt: 'beginning' as const,
  /** server_audit writes local time without a zone: the offset of the server's zone (0: TZ=UTC). */
  serverAuditUtcOffsetMinutes: 0,
  /** Create `<topic>.db-audit` when missing (3 partitions, 4 MiB messages). */
  createTopic: true,
  /** Wait between attempts to publish a batch Kafka did not acknowledge. */
  retryBackoffMs: 1000,
})

const sourceId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'letters, digits, . _ - (at most 128), starting with a letter or digit')

/** pg `schema.table`, MariaDB `database.table`, as the server's log names them. */
const tableName = z.string().min(3).max(LIMITS.name).regex(/^[^.\s,]+\.[^.\s,]+$/, 'schema.table (PostgreSQL) or database.table (MariaDB), as the audit log names it')

/**
 * Options of runDbAuditReader / DbAuditReader. Parsed once, every invalid
 * key named in one CONFIG_INVALID, then frozen.
 */
export const DbAuditReaderConfig = z
  .object({
    /** This reader's id: its producer_id in every batch and the name of its position file. */
    source: sourceId,
    kind: z.enum(DB_AUDIT_SOURCE_KINDS),
    /** A log directory (PostgreSQL: every *.csv or *.json file in it) or a file (rotated to file.1, file.2…). */
    log: z.string().min(1).max(4096),
    /** pgaudit only: which of PostgreSQL's structured logs to read. @default from the log path's extension, else the only kind in the directory */
    logFormat: z.enum(PG_LOG_FORMATS).optional(),
    tables: z.array(tableName).min(1).max(1000),
    /** Directory of the position file and lock (created 0700). */
    stateDir: z.string().min(1).max(4096),
    /** The event topic; batches go to `<topic>.db-audit`. */
    topic: z.string().regex(/^[A-Za-z0-9._-]{1,200}$/, 'a Kafka topic name'),
    /** The name the signing key is trusted for. */
    service: z.string().min(1).max(LIMITS.name),
    kafka: KafkaConnection.default(() => KafkaConnection.parse({})),
    pollIntervalMs: z.number().int().min(10).max(60_000).default(DB_AUDIT_READER_DEFAULTS.pollIntervalMs),
    maxBatchEvents: z.number().int().min(1).max(MAX_SIDE_EVENTS_PER_BATCH).default(DB_AUDIT_READER_DEFAULTS.maxBatchEvents),
    maxBatchBytes: z.number().int().min(64 * 1024).max(64 * 1024 * 1024).default(DB_AUDIT_READER_DEFAULTS.maxBatchBytes),
    maxRecordBytes: z.number().int().min(4096).max(64 * 1024 * 1024).default(DB_AUDIT_READER_DEFAULTS.maxRecordBytes),
    readChunkBytes: z.number().int().min(4096).max(16 * 1024 * 1024).default(DB_AUDIT_READER_DEFAULTS.readChunkBytes),
    maxPendingStatements: z.number().int().min(1).max(100_000).default(DB_AUDIT_READER_DEFAULTS.maxPendingStatements),
    startAt: z.enum(['beginning', 'end']).default(DB_AUDIT_READER_DEFAULTS.startAt),
    serverAuditUtcOffsetMinutes: z.number().int().min(-14 * 60).max(14 * 60).default(DB_AUDIT_READER_DEFAULTS.serverAuditUtcOffsetMinutes),
    createTopic: z.boolean().default(DB_AUDIT_READER_DEFAULTS.createTopic),
    retryBackoffMs: z.number().int().min(10).max(60_000).default(DB_AUDIT_READER_DEFAULTS.retryBackoffMs),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.kind === 'server_audit' && c.logFormat !== undefined) ctx.addIssue({ code: 'custom', path: ['logFormat'], message: 'only for kind pgaudit (server_audit has one format)' })
    if (c.tables.length > c.maxBatchEvents) ctx.addIssue({ code: 'custom', path: ['tables'], message: `at most maxBatchEvents (${c.maxBatchEvents}) tables: one statement may read them all, and its entries go in one batch` })
  })

export type DbAuditReaderConfigInput = z.input<typeof DbAuditReaderConfig>
export type DbAuditReaderConfig = z.output<typeof DbAuditReaderConfig>

export function parseDbAuditReaderConfig(input: unknown): Readonly<DbAuditReaderConfig> {
  return parseConfig(DbAuditReaderConfig, input, 'db-audit reader')
}

/** The key batches are signed with: a PKCS#8 PEM path or an Ed25519 KeyObject (checked by loadProducerSigningKey). */
export type SigningKeySource = string | KeyObject
