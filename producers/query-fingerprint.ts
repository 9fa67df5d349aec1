/**
 * Normalises SQL into a fingerprint with every literal replaced by `?`. The
 * audit log must not carry the personal data it protects, and a WHERE clause
 * is exactly where a name or a birth date would be. Identifiers, keywords and
 * placeholders stay, so analysts can still tell one query shape from another.
 *
 * A scanner, not a regex: literals and comments are found the way the
 * database's own lexer finds them, including PostgreSQL's nested block
 * comments and dollar quotes, and the dialect's view of quotes and
 * backslashes. Where the two lexers could disagree, or the text is malformed
 * (an unterminated quote, a number with trailing junk), the scanner gives up
 * on shape and writes `?`: a lost keyword is cheap, a leaked name is not.
 *
 * It runs on every recorded read, on the application's own thread: one pass,
 * char codes only, no regex per character, and no step that looks back over
 * the output (a look-back per literal made long IN lists quadratic).
 */
export type SqlDialect = 'postgres' | 'mysql'

const BACKSLASH = 92
const SINGLE_QUOTE = 39
const DOUBLE_QUOTE = 34
const BACKTICK = 96
const DOLLAR = 36
const MINUS = 45
const DOT = 46
const SLASH = 47
const STAR = 42
const HASH = 35
const OPEN_PAREN = 40
const CLOSE_PAREN = 41
const CLOSE_BRACKET = 93
const QUESTION = 63
const UNDERSCORE = 95

// charCodeAt past the end is NaN, and every comparison with NaN is false:
// these helpers need no bounds checks.
const isDigit = (c: number): boolean => c >= 48 && c <= 57
const isAsciiLetter = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90)
// Both dialects accept any non-ASCII character in an unquoted identifier
// (PostgreSQL: any high-bit byte; MySQL: U+0080 and above).
const isIdentStart = (c: number): boolean => isAsciiLetter(c) || c === UNDERSCORE || c >= 0x80
const isIdentPart = (c: number): boolean => isIdentStart(c) || isDigit(c) || c === DOLLAR
const isSpace = (c: number): boolean => c === 32 || (c >= 9 && c <= 13)

/**
 * Words after which a `-` can only be a sign, so `BETWEEN -5` loses its sign
 * with its digits: the sign of a balance or an offset is data too.
 */
const KEYWORDS_BEFORE_OPERAND = new Set([
  'ALL', 'AND', 'ANY', 'BETWEEN', 'BY', 'CASE', 'DISTINCT', 'DIV', 'ELSE', 'ESCAPE', 'FOR', 'FROM', 'HAVING', 'ILIKE',
  'IN', 'INTERVAL', 'IS', 'LIKE', 'LIMIT', 'MOD', 'NOT', 'OFFSET', 'ON', 'OR', 'REGEXP', 'RETURN', 'RETURNING', 'RLIKE',
  'SELECT', 'SET', 'SIMILAR', 'SOME', 'THEN', 'TO', 'WHEN', 'WHERE', 'XOR',
])

// What the last emitted token was, for telling a sign from a subtraction.
/** Nothing, an operator, `(` or `,`: a following `-` is a sign. */
const OPERATOR = 0
/** A literal, placeholder, quoted identifier, `)` or `]`: `-` subtracts. */
const OPERAND = 1
/** A bare word: `-` subtracts unless the word is a keyword like `AND`. */
const WORD = 2
type TokenKind = typeof OPERATOR | typeof OPERAND | typeof WORD

export function fingerprintQuery(sql: string, dialect: SqlDialect = 'postgres'): string {
  const mysql = dialect === 'mysql'
  const n = sql.length
  // Output is the source with literals and comments cut out: runs of source
  // kept as they are (spanStart..spanEnd) are copied in one slice, not token
  // by token, so the result is a few pieces rather than one per token.
  let out = ''
  let spanStart = 0
  let spanEnd = 0
  let empty = true
  // Whitespace or a comment was skipped since the last token: one space is
  // owed before the next, unless it follows `(` or precedes `)`.
  let gap = false
  let afterOpenParen = false
  let last: TokenKind = OPERATOR
  let wordStart = 0
  let wordEnd = 0
  let i = 0

  while (i < n) {
    const start = i
    const c = sql.charCodeAt(i)
    const next = sql.charCodeAt(i + 1)
    // The token becomes `?` rather than a copy of its source text.
    let literal = true
    let kind: TokenKind = OPERAND

    if (isSpace(c)) {
      gap = true
      i += 1
      continue
    } else if ((c === MINUS && next === MINUS) || (c === HASH && mysql)) {
      // MySQL wants a space after `--`; taking `--1` as a comment there drops
      // text, it never keeps a literal.
      const end = sql.indexOf('\n', i)
      i = end < 0 ? n : end
      gap = true
      continue
    } else if (c === SLASH && next === STAR) {
      i = blockCommentEnd(sql, i, !mysql)
      gap = true
      continue
    } else if (next === SINGLE_QUOTE && isStringPrefix(c)) {
      // E'…' N'…' B'…' X'…'. MySQL always honours backslash escapes;
      // PostgreSQL only in E'…' (standard_conforming_strings is on by default).
      const end = quotedEnd(sql, i + 1, SINGLE_QUOTE, mysql || (c | 32) === 101)
      i = end < 0 ? n : end
    } else if (isIdentStart(c)) {
      i += 1
      while (isIdentPart(sql.charCodeAt(i))) i += 1
      literal = false
      kind = WORD
      wordStart = start
      wordEnd = i
    } else if (c === SINGLE_QUOTE) {
      const end = quotedEnd(sql, i, SINGLE_QUOTE, mysql)
      i = end < 0 ? n : end
    } else if (isDigit(c) || (c === DOT && isDigit(next))) {
      i = numberEnd(sql, i)
    } else if (c === MINUS && (isDigit(next) || (next === DOT && isDigit(sql.charCodeAt(i + 2)))) && !precedesOperand(last, sql, wordStart, wordEnd)) {
      // A sign directly before a number is part of the literal.
      i = numberEnd(sql, i + 1)
    } else if (c === DOUBLE_QUOTE) {
      // An identifier in PostgreSQL, a string in MySQL (unless ANSI_QUOTES,
      // which the fingerprint cannot see). Even in PostgreSQL only a plain
      // identifier is kept: "Alice Smith" in a hand-written query may be data.
      const end = quotedEnd(sql, i, DOUBLE_QUOTE, mysql)
      literal = mysql || end < 0 || !isPlainQuotedIdentifier(sql, i, end)
      i = end < 0 ? n : end
    } else if (c === BACKTICK && mysql) {
      // An unclosed backtick would otherwise copy the rest of the text.
      const end = quotedEnd(sql, i, BACKTICK, false)
      literal = end < 0
      i = end < 0 ? n : end
    } else if (c === DOLLAR && !mysql && isDollarTagAt(sql, i)) {
      let k = i + 1
      while (sql.charCodeAt(k) !== DOLLAR) k += 1
      const tag = sql.slice(i, k + 1)
      const end = sql.indexOf(tag, k + 1)
      i = end < 0 ? n : end + tag.length
    } else if (c === DOLLAR && isDigit(next)) {
      i += 2
      while (isDigit(sql.charCodeAt(i))) i += 1
      literal = false
    } else {
      // Operators and punctuation; a PostgreSQL backtick is one of them.
      i += 1
      literal = false
      kind = c === CLOSE_PAREN || c === CLOSE_BRACKET || c === QUESTION ? OPERAND : OPERATOR
    }

    if (gap) {
      gap = false
      if (!empty && !afterOpenParen && c !== CLOSE_PAREN) {
        if (spanEnd === start - 1 && sql.charCodeAt(spanEnd) === 32) {
          spanEnd = start
        } else {
          out += sql.slice(spanStart, spanEnd) + ' '
          spanStart = spanEnd = start
        }
      }
    }
    if (literal) {
      out += sql.slice(spanStart, spanEnd) + '?'
      spanStart = spanEnd = i
    } else if (spanEnd === start) {
      spanEnd = i
    } else {
      out += sql.slice(spanStart, spanEnd)
      spanStart = start
      spanEnd = i
    }
    empty = false
    afterOpenParen = c === OPEN_PAREN
    last = kind
  }
  return collapseLists(out + sql.slice(spanStart, spanEnd))
}

/** `IN (?, ?, ?)` and multi-row VALUES differ only in length: one shape. */
function collapseLists(sql: string): string {
  // Each pattern starts at a literal `(` and cannot backtrack past the next
  // one, so each pass is linear; the guards spare most fingerprints all three.
  let out = sql
  if (out.includes('?,') || out.includes('? ,')) out = out.replace(/\(\s*\?(?:\s*,\s*\?)+\s*\)/g, '(?+)')
  if (out.includes('(?+),') || out.includes('(?+) ,')) out = out.replace(/\(\?\+\)(?:\s*,\s*\(\?\+\))+/g, '(?+)+')
  if (out.includes('(?),') || out.includes('(?) ,')) out = out.replace(/\(\s*\?\s*\)(?:\s*,\s*\(\s*\?\s*\))+/g, '(?)+')
  return out
}

/** E, N, B or X (either case) directly before a quote starts a string. */
function isStringPrefix(c: number): boolean {
  const lower = c | 32
  return isAsciiLetter(c) && (lower === 101 || lower === 110 || lower === 98 || lower === 120)
}

/**
 * Index just past the closing quote of the run opened at `start`, or -1 when
 * the text ends first. A doubled quote is an escaped quote.
 */
function quotedEnd(sql: string, start: number, quote: number, backslashEscapes: boolean): number {
  const n = sql.length
  let k = start + 1
  while (k < n) {
    const c = sql.charCodeAt(k)
    if (c === quote) {
      if (sql.charCodeAt(k + 1) !== quote) return k + 1
      k += 2
    } else {
      k += c === BACKSLASH && backslashEscapes ? 2 : 1
    }
  }
  return -1
}

/** PostgreSQL block comments nest; MySQL's do not. Unclosed: to the end. */
function blockCommentEnd(sql: string, start: number, nested: boolean): number {
  const n = sql.length
  let depth = 1
  let k = start + 2
  while (k < n) {
    const c = sql.charCodeAt(k)
    if (c === STAR && sql.charCodeAt(k + 1) === SLASH) {
      k += 2
      depth -= 1
      if (depth === 0) return k
    } else if (nested && c === SLASH && sql.charCodeAt(k + 1) === STAR) {
      k += 2
      depth += 1
    } else {
      k += 1
    }
  }
  return n
}

/**
 * A numeric literal starting at `start`: digits, `_` separators, `.`, an
 * exponent with its sign, and then every identifier character glued to it.
 * That last rule covers 0x…, 0b…, 0o… and PostgreSQL 16's `1_000`, and makes
 * `123abc` (an identifier in MySQL, an error in PostgreSQL 16) a `?` too:
 * a run that starts with a digit is more likely data than a name.
 */
function numberEnd(sql: string, start: number): number {
  let k = start
  let c = sql.charCodeAt(k)
  while (isDigit(c) || c === UNDERSCORE || c === DOT) c = sql.charCodeAt(++k)
  if ((c | 32) === 101) {
    const sign = sql.charCodeAt(k + 1)
    if ((sign === 43 || sign === MINUS) && isDigit(sql.charCodeAt(k + 2))) k += 2
  }
  while (isIdentPart(sql.charCodeAt(k))) k += 1
  return k
}

/**
 * `$tag$` or `$$` at `at`. Tags follow PostgreSQL's identifier rules without
 * `$`: a letter (any non-ASCII character counts), or `_`, then letters,
 * digits and `_`. `$1` is a parameter, not a tag.
 */
function isDollarTagAt(sql: string, at: number): boolean {
  let k = at + 1
  let c = sql.charCodeAt(k)
  if (c === DOLLAR) return true
  if (!isIdentStart(c)) return false
  do c = sql.charCodeAt(++k)
  while (isIdentStart(c) || isDigit(c))
  return c === DOLLAR
}

/** `"name"` with 1–63 ASCII identifier characters and no escaped quote. */
function isPlainQuotedIdentifier(sql: string, start: number, end: number): boolean {
  const length = end - start - 2
  if (length < 1 || length > 63) return false
  const first = sql.charCodeAt(start + 1)
  if (!isAsciiLetter(first) && first !== UNDERSCORE) return false
  for (let k = start + 2; k < end - 1; k++) {
    const c = sql.charCodeAt(k)
    if (!isAsciiLetter(c) && !isDigit(c) && c !== UNDERSCORE && c !== DOLLAR) return false
  }
  return true
}

function precedesOperand(last: TokenKind, sql: string, wordStart: number, wordEnd: number): boolean {
  if (last === OPERATOR) return false
  if (last === OPERAND) return true
  // Only reached for `word-digit`, so the slice is rare.
  return !KEYWORDS_BEFORE_OPERAND.has(sql.slice(wordStart, wordEnd).toUpperCase())
}
