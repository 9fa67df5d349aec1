import { z } from 'zod'
import { LIMITS } from '../../schemas/access-event.js'
import { GuardConfig } from '../guard/guard-config.js'

const name = z.string().min(1).max(LIMITS.name)

/** What happens to a read of this table when its audit event cannot be made durable. */
export const AUDIT_POLICIES = ['fail-open', 'fail-closed'] as const
export type AuditPolicy = (typeof AUDIT_POLICIES)[number]

export const SensitiveTable = z
  .object({
    /**
     * `fail-open`: the read proceeds, its event waits in the outbox, a counter
     * and a warning record the lapse. `fail-closed`: the query rejects with
     * AuditUnavailableError unless the event is durable within
     * `durableWithinMs`. @default 'fail-open'
     */
    policy: z.enum(AUDIT_POLICIES).default('fail-open'),
    /** Primary key column(s); by default read from the database catalog. */
    primaryKey: z.union([name, z.array(name).min(1).max(32)]).optional().transform((k) => (k === undefined ? undefined : Array.isArray(k) ? k : [k])),
    /**
     * The columns that make a read sensitive. A result holding none of them is
     * not recorded (a bare count of ids, say). @default every column
     */
    columns: z.array(name).min(1).max(LIMITS.columns).optional(),
  })
  .strict()
export type SensitiveTable = z.output<typeof SensitiveTable>

/** Options of the database hooks (instrumentPg, instrumentMysql2), validated once and frozen. */
export const AuditHookConfig = z
  .object({
    /**
     * Sensitive tables by qualified name: `schema.table` for PostgreSQL
     * (`people` means `public.people`), `database.table` for MySQL/MariaDB
     * (`people` means the connection's database).
     */
    tables: z.record(name, SensitiveTable).refine((t) => Object.keys(t).length > 0, 'name at least one sensitive table'),
    /**
     * Strict mode refuses, instead of recording with a warning, a hooked read
     * with no audit context (CONTEXT_MISSING) or without the primary key
     * (RECORD_IDS_INCOMPLETE). An anonymous request's read is not refused:
     * its adapter set a context, with the request's client IP and trace id.
     * @default false
     */
    strict: z.boolean().default(false),
    /**
     * The `db_name` recorded in events, for every table. By default the
     * server is asked: PostgreSQL's `current_database()` (once, when the
     * hook attaches: a connection string, PGDATABASE or a pooler alias may
     * name it only there), and for MySQL/MariaDB the database each table
     * lives in (whatever the connection's default database is).
     * @default the database the server reports
     */
    database: name.optional(),
    /** How long a fail-closed read waits for its event to be durable. @default 5000 */
    durableWithinMs: z.number().int().min(10).max(120_000).default(5000),
    /**
     * Most rows of one sensitive table a single query may return; more is
     * refused with READ_TOO_LARGE before the caller sees any row (a guard
     * against bulk extraction as much as a memory bound). @default 1000000
     */
    maxRowsPerRead: z.number().int().min(1).max(100_000_000).default(1_000_000),
    /**
     * The extraction guard: per-principal budgets of records per minute and
     * per hour, checked before a read's rows reach the caller
     * (producers/guard). @default none: no budget
     */
    guard: GuardConfig.optional(),
  })
  .strict()
  .superRefine((config, ctx) => {
    // A budget naming a table the hooks do not watch would never count a
    // read: a typo there is a budget that silently does nothing.
    for (const [budget, { tables }] of Object.entries(config.guard?.budgets ?? {})) {
      tables.forEach((table, i) => {
        if (!Object.hasOwn(config.tables, table)) {
          ctx.addIssue({ code: 'custom', path: ['guard', 'budgets', budget, 'tables', i], message: `${table} is not one of the sensitive tables (${Object.keys(config.tables).join(', ')}); name it exactly as in tables` })
        }
      })
    }
  })

export type AuditHookConfig = z.output<typeof AuditHookConfig>
export type AuditHookConfigInput = z.input<typeof AuditHookConfig>
