/**
 * Normalises SQL into a fingerprint with every literal replaced by `?`. The
 * audit log must not carry the personal data it protects, and a WHERE clause
 * is exactly where a name or a birth date would be. Identifiers, keywords and
 * placeholders stay, so analysts can still tell one query shape from another.
 *
 * A scanner, not a regex: literals and comments are found the way the
 * database's own lexer finds them, including PostgreSQL's nested block
 * comments and dollar quotes, and the dialect's view of backslashes.
 */
export type SqlDialect = 'postgres' | 'mysql'

const SAFE_IDENTIFIER = /^"[A-Za-z_][A-Za-z0-9_$]{0,62}"$/
// Character classes by code: this runs on every recorded read, on the
// application's own thread, so no regex per character.
const isDigitCode = (c: number) => c >= 48 && c <= 57
const isIdentStartCode = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c >= 0x80
const isIdentPartCode = (c: number) => isIdentStartCode(c) || isDigitCode(c) || c === 36
const isSpaceCode = (c: number) => c === 32 || (c >= 9 && c <= 13)
const DIGIT = { test: (ch: string) => ch !== '' && isDigitCode(ch.charCodeAt(0)) }
const IDENT_PART = { test: (ch: string) => ch !== '' && isIdentPartCode(ch.charCodeAt(0)) }

export function fingerprintQuery(sql: string, dialect: SqlDialect = 'postgres'): string {
  let out = ''
  let i = 0
  const n = sql.length
  const at = (k: number) => sql[k] ?? ''

  /** End index (exclusive) of a quoted run starting at `start` (on the quote). */
  const quoted = (start: number, quote: string, backslashEscapes: boolean): number => {
    let k = start + 1
    while (k < n) {
      const c = sql[k]
      if (backslashEscapes && c === '\\') k += 2
      else if (c === quote && at(k + 1) === quote) k += 2
      else if (c === quote) return k + 1
      else k += 1
    }
    return n
  }

  while (i < n) {
    const c = sql[i]!
    const code = sql.charCodeAt(i)
    const next = at(i + 1)
    if (isSpaceCode(code)) {
      out += ' '
      i += 1
      while (i < n && isSpaceCode(sql.charCodeAt(i))) i += 1
    } else if ((c === '-' && next === '-') || (c === '#' && dialect === 'mysql')) {
      const end = sql.indexOf('\n', i)
      i = end < 0 ? n : end
      out += ' '
    } else if (c === '/' && next === '*') {
      // PostgreSQL block comments nest; MySQL's do not.
      let depth = 1
      let k = i + 2
      while (k < n && depth > 0) {
        if (sql[k] === '*' && at(k + 1) === '/') {
          depth -= 1
          k += 2
        } else if (dialect === 'postgres' && sql[k] === '/' && at(k + 1) === '*') {
          depth += 1
          k += 2
        } else {
          k += 1
        }
      }
      i = k
      out += ' '
    } else if (c === '$' && dialect === 'postgres' && /^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/.test(sql.slice(i, i + 65))) {
      const tag = /^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 65))![0]
      const end = sql.indexOf(tag, i + tag.length)
      i = end < 0 ? n : end + tag.length
      out += '?'
    } else if (c === '$' && DIGIT.test(next)) {
      let k = i + 1
      while (DIGIT.test(at(k))) k += 1
      out += sql.slice(i, k)
      i = k
    } else if (c === "'" || (/[EeNnBbXx]/.test(c) && next === "'" && !IDENT_PART.test(at(i - 1)))) {
      const start = c === "'" ? i : i + 1
      // MySQL always honours backslash escapes; PostgreSQL only in E'…'.
      const backslash = dialect === 'mysql' || c === 'E' || c === 'e'
      i = quoted(start, "'", backslash)
      out += '?'
    } else if (c === '"') {
      const end = quoted(i, '"', dialect === 'mysql')
      const text = sql.slice(i, end)
      // "x" is an identifier in PostgreSQL but a string in MySQL: keep it
      // only when it looks like an identifier, otherwise it may be data.
      out += SAFE_IDENTIFIER.test(text) ? text : '?'
      i = end
    } else if (c === '`') {
      const end = quoted(i, '`', false)
      out += sql.slice(i, end)
      i = end
    } else if (isDigitCode(code) || (c === '.' && DIGIT.test(next))) {
      let k = i
      if (c === '0' && (next === 'x' || next === 'X')) {
        k += 2
        while (/[0-9A-Fa-f]/.test(at(k))) k += 1
      } else {
        while (DIGIT.test(at(k)) || at(k) === '.') k += 1
        if ((at(k) === 'e' || at(k) === 'E') && /[0-9+-]/.test(at(k + 1))) {
          k += 2
          while (DIGIT.test(at(k))) k += 1
        }
      }
      // A sign directly before a number is part of the literal.
      if (out.endsWith('-') && !/[\w)\]?]\s*-$/.test(out)) out = out.slice(0, -1)
      out += '?'
      i = k
    } else if (isIdentStartCode(code)) {
      let k = i + 1
      while (k < n && isIdentPartCode(sql.charCodeAt(k))) k += 1
      out += sql.slice(i, k)
      i = k
    } else {
      out += c
      i += 1
    }
  }
  return collapseLists(out.replace(/\s+/g, ' ').replace(/\( /g, '(').replace(/ \)/g, ')').trim())
}

/** `IN (?, ?, ?)` and multi-row VALUES differ only in length: one shape. */
function collapseLists(sql: string): string {
  return sql
    .replace(/\(\s*\?(?:\s*,\s*\?)+\s*\)/g, '(?+)')
    .replace(/\(\?\+\)(?:\s*,\s*\(\?\+\))+/g, '(?+)+')
    .replace(/\(\s*\?\s*\)(?:\s*,\s*\(\s*\?\s*\))+/g, '(?)+')
}
