import { z } from 'zod'

/**
 * Where the data subject sits in a record id, per `database.table` as
 * recorded: `database.schema.table` for a PostgreSQL table the hook
 * recorded as `schema.table` (`clinic.public.patients`):
 * 0 = the record id is the subject id (patients.id); n ≥ 1 = the subject is
 * the n-th part of a composite key recorded as a JSON array
 * (treatments ["patient_id","n"] → 1). Tables without an entry have no
 * known subject; answers count their records but not their subjects.
 */
export type SubjectKeys = ReadonlyMap<string, number>

export const NO_SUBJECT_KEYS: SubjectKeys = new Map()

const entry = /^([A-Za-z0-9_$-]+)\.([A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+)?)=(id|key([1-9]\d?))$/

/**
 * Parses `READTRAIL_SUBJECT_KEYS`, e.g.
 * `registry.applicants=id,practice.patients=id,practice.treatments=key1`.
 */
export const SubjectKeysText = z.string().transform((text, ctx): SubjectKeys => {
  const keys = new Map<string, number>()
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = entry.exec(part)
    if (!m) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(part)}: expected database.table=id or database.table=keyN (N from 1), database.schema.table for a PostgreSQL schema` })
      continue
    }
    const table = `${m[1]}.${m[2]}`
    if (keys.has(table)) ctx.addIssue({ code: 'custom', message: `${table} is given twice` })
    keys.set(table, m[3] === 'id' ? 0 : Number(m[4]))
  }
  return keys
})

/** Bound values for `subjectIdSql`: table names and their key parts, side by side. */
export function bindSubjectKeys(keys: SubjectKeys): { subject_tables: string[]; subject_parts: number[] } {
  return { subject_tables: [...keys.keys()], subject_parts: [...keys.values()] }
}

/**
 * The subject id of a row with `db_name`, `table_name`, `record_id`, or NULL
 * when the table has no subject key. Uses bound arrays only.
 */
export function subjectIdSql(): string {
  const part = subjectPartSql()
  return `multiIf(${part} = -1, NULL, ${part} = 0, record_id, JSONExtractString(record_id, toInt64(${part})))`
}

/** Subject keys as entries, as they travel to the process owning the store; validated again there. */
export const SubjectKeyEntries = z
  .array(z.tuple([z.string().regex(/^[A-Za-z0-9_$-]+\.[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)?$/, 'must be database.table or database.schema.table'), z.number().int().min(0).max(99)]))
  .max(1000)
  .transform((entries): SubjectKeys => new Map(entries))

/** The table's key part naming the subject: -1 none, 0 the whole record id, n the n-th part. */
export function subjectPartSql(): string {
  const at = `indexOf({subject_tables:Array(String)}, concat(db_name, '.', table_name))`
  return `if(${at} = 0, -1, toInt16({subject_parts:Array(UInt8)}[${at}]))`
}
