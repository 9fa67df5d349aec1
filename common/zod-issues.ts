import type { z } from 'zod'

export interface NamedIssue {
  /** Dotted path of the offending key ("(root)" for the whole value). */
  key: string
  problem: string
}

/**
 * zod issues as one entry per offending key. An unknown key is reported by
 * zod against its parent object; here it is named itself, so callers reading
 * `details.issues` can tell which key to remove.
 */
export function namedIssues(error: z.ZodError, root = '(root)'): NamedIssue[] {
  const out: NamedIssue[] = []
  for (const issue of error.issues) {
    const base = issue.path.map(String)
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ key: [...base, key].join('.'), problem: 'unknown key' })
    } else {
      out.push({ key: base.join('.') || root, problem: issue.message })
    }
  }
  return out
}
