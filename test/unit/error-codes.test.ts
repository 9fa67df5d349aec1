import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ERROR_CODES, RETRIABLE_CODES, type ErrorCode } from '../../common/error-codes.js'
import { ReadtrailError } from '../../common/errors.js'

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')
const headings = [...doc.matchAll(/^## (.+)$/gm)].map((m) => m[1]!.trim())

/** The text of one `## CODE` section, up to the next heading. */
function section(code: string): string {
  const start = doc.indexOf(`\n## ${code}\n`)
  if (start < 0) return ''
  const next = doc.indexOf('\n## ', start + 1)
  return doc.slice(start, next < 0 ? undefined : next)
}

describe('docs/errors.md', () => {
  const codes = Object.keys(ERROR_CODES)

  it('has a heading for every error code', () => {
    expect(codes.filter((c) => !headings.includes(c))).toEqual([])
  })

  it('has no heading that is not an error code, and none twice', () => {
    expect(headings.filter((h) => !codes.includes(h))).toEqual([])
    expect(new Set(headings).size).toBe(headings.length)
  })

  it.each(codes)('%s says whether it is retriable and what an operator should do', (code) => {
    const text = section(code)
    expect(text).toMatch(/^- Retriable: (yes|no)\b/m)
    expect(text).toMatch(/^- Operator: \S/m)
  })

  it.each(codes)('%s: the documented retriable flag is the one the error carries', (code) => {
    const documented = /^- Retriable: (yes|no)\b/m.exec(section(code))?.[1]
    expect(documented).toBe(RETRIABLE_CODES.has(code as ErrorCode) ? 'yes' : 'no')
    expect(new ReadtrailError(code as ErrorCode, 'x').retriable).toBe(documented === 'yes')
  })

  it.each(Object.entries(ERROR_CODES))('%s shows the description from common/error-codes.ts', (code, description) => {
    const squash = (t: string) => t.replace(/\s+/g, ' ')
    expect(squash(section(code))).toContain(squash(description))
  })
})

describe("the database-audit reader's codes", () => {
  it('are readtrail codes, with the retriable flag its own table gives them', async () => {
    const { DB_AUDIT_ERROR_CODES, DbAuditError } = await import('../../producers/db-audit/errors.js')
    for (const [code, { retriable }] of Object.entries(DB_AUDIT_ERROR_CODES)) {
      const err = new DbAuditError(code as keyof typeof DB_AUDIT_ERROR_CODES, 'x')
      expect(err, code).toBeInstanceOf(ReadtrailError)
      expect(err.retriable, code).toBe(retriable)
      expect(Object.keys(ERROR_CODES), code).toContain(code)
    }
  })
})
