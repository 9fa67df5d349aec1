import type { AuditProducer } from '../producers/audit-producer.js'
import type { Applicant } from './applicants.js'

/** Who is asking, as the application knows it from its session. */
export interface RequestContext {
  principal: { id: string; type?: 'user' | 'service' | 'system' }
  sessionId: string
  clientIp: string
  purpose?: string
  /** Simulated time of the request (microseconds since the epoch). */
  at: number
}

/**
 * A small admissions-registry back office: every function that returns
 * applicant rows records the read through the SDK before returning them, with
 * the primary key of every row. Reads are refused if the audit event cannot
 * be acknowledged (the fail-closed posture a registry should take).
 */
export function createRegistryApp(applicants: readonly Applicant[], audit: AuditProducer) {
  const byId = new Map(applicants.map((a) => [a.id, a]))

  async function audited<T extends Applicant>(ctx: RequestContext, rows: T[], columns: (keyof Applicant)[], query: string, action: 'read' | 'export' | 'search' = 'read'): Promise<T[]> {
    await audit.recordRead({
      principal: { id: ctx.principal.id, type: ctx.principal.type ?? 'user' },
      sessionId: ctx.sessionId,
      clientIp: ctx.clientIp,
      action,
      resource: { database: 'admissions', table: 'applicants' },
      columns,
      recordIds: rows.map((r) => r.id),
      query,
      purpose: ctx.purpose,
      occurredAt: ctx.at,
    })
    return rows
  }

  return {
    getApplicant(ctx: RequestContext, id: number) {
      const row = byId.get(id)
      return audited(ctx, row ? [row] : [], ['id', 'full_name', 'birth_date', 'phone', 'address'], `SELECT id, full_name, birth_date, phone, address FROM applicants WHERE id = ${id}`)
    },
    searchByName(ctx: RequestContext, lastName: string) {
      const rows = applicants.filter((a) => a.full_name.endsWith(` ${lastName}`)).slice(0, 25)
      return audited(ctx, rows, ['id', 'full_name', 'nationality'], `SELECT id, full_name, nationality FROM applicants WHERE full_name LIKE '%${lastName}' LIMIT 25`, 'search')
    },
    listPage(ctx: RequestContext, afterId: number, limit: number) {
      const rows = applicants.filter((a) => a.id > afterId).slice(0, limit)
      return audited(
        ctx,
        rows,
        ['id', 'full_name', 'nationality', 'birth_date', 'phone', 'email', 'address'],
        `SELECT * FROM applicants WHERE id > ${afterId} ORDER BY id LIMIT ${limit}`,
      )
    },
    exportForMailing(ctx: RequestContext, year: number) {
      const rows = applicants.filter((a) => a.applied_year === year).slice(0, 200)
      return audited(ctx, rows, ['id', 'full_name', 'address'], `SELECT id, full_name, address FROM applicants WHERE applied_year = ${year}`, 'export')
    },
  }
}
