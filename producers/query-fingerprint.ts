/**
 * Normalises SQL into a fingerprint with every literal replaced by `?`. The
 * audit log must not carry the personal data it protects, and a WHERE clause
 * is exactly where a name or a birth date would be. Identifiers, keywords and
 * placeholders stay, so analysts can still tell one query shape from another.
 */
const TOKEN = new RegExp(
  [
    String.raw`(?<comment>--[^\n]*|#[^\n]*|/\*[\s\S]*?(?:\*/|$))`,
    String.raw`(?<dollar>\$(?<tag>[A-Za-z_]*)\$[\s\S]*?(?:\$\k<tag>\$|$))`,
    String.raw`(?<string>[EeNnBbXx]?'(?:[^'\\]|''|\\[\s\S])*(?:'|$))`,
    String.raw`(?<dquoted>"(?:[^"]|"")*(?:"|$))`,
    String.raw`(?<backtick>` + '`[^`]*`?' + ')',
    String.raw`(?<placeholder>\$\d+|:[A-Za-z_]\w*|\?)`,
    String.raw`(?<number>(?<![\w$])(?:0x[0-9A-Fa-f]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?))`,
    String.raw`(?<word>[A-Za-z_][\w$]*)`,
    String.raw`(?<space>\s+)`,
  ].join('|'),
  'g',
)

const SAFE_IDENTIFIER = /^"[A-Za-z_][A-Za-z0-9_$]{0,62}"$/

export function fingerprintQuery(sql: string): string {
  let out = ''
  let last = 0
  for (const match of sql.matchAll(TOKEN)) {
    out += sql.slice(last, match.index)
    last = match.index + match[0].length
    const g = match.groups!
    if (g['comment'] !== undefined) out += ' '
    else if (g['dollar'] !== undefined || g['string'] !== undefined || g['number'] !== undefined) out += '?'
    // "x" is an identifier in PostgreSQL but a string in MySQL: keep it only
    // when it looks like an identifier, otherwise it may be data.
    else if (g['dquoted'] !== undefined) out += SAFE_IDENTIFIER.test(g['dquoted']) ? g['dquoted'] : '?'
    else if (g['space'] !== undefined) out += ' '
    else out += match[0]
  }
  out += sql.slice(last)
  return collapseLists(out.replace(/\s+/g, ' ').trim())
}

/** `IN (?, ?, ?)` and multi-row VALUES differ only in length: one shape. */
function collapseLists(sql: string): string {
  return sql
    .replace(/\(\s*\?(?:\s*,\s*\?)+\s*\)/g, '(?+)')
    .replace(/\(\?\+\)(?:\s*,\s*\(\?\+\))+/g, '(?+)+')
    .replace(/\(\s*\?\s*\)(?:\s*,\s*\(\s*\?\s*\))+/g, '(?)+')
}
