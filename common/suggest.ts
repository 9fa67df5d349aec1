/**
 * "Did you mean" for everything a user types by name: commands,
 * subcommands, flags, saved queries and their parameters. Optimal string
 * alignment distance (Levenshtein plus adjacent transpositions, so `tabel`
 * is one edit from `table`), bounded by the word's length so that a short
 * word is never "corrected" into an unrelated one.
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1
  const cols = b.length + 1
  const d: number[] = new Array<number>(rows * cols).fill(0)
  const at = (i: number, j: number) => d[i * cols + j]!
  for (let i = 0; i < rows; i++) d[i * cols] = i
  for (let j = 0; j < cols; j++) d[j] = j
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1)
      d[i * cols + j] = best
    }
  }
  return at(a.length, b.length)
}

/**
 * The candidates close enough to `word` to be what was meant, nearest first
 * (ties in the candidates' order). A candidate that starts with the word
 * (`--since` for `--since-checkpoint`) counts as close whatever its length.
 */
export function closestMatches(word: string, candidates: Iterable<string>, max = 3): string[] {
  const w = word.toLowerCase()
  const limit = Math.max(1, Math.min(3, Math.floor(w.length / 3)))
  const scored: { name: string; distance: number; order: number }[] = []
  let order = 0
  for (const name of candidates) {
    const n = name.toLowerCase()
    const distance = n === w ? 0 : editDistance(w, n)
    const prefix = w.length >= 3 && (n.startsWith(w) || w.startsWith(n))
    if (distance <= limit || prefix) scored.push({ name, distance: prefix ? Math.min(distance, limit) : distance, order: order++ })
    else order++
  }
  return scored
    .sort((x, y) => x.distance - y.distance || x.order - y.order)
    .slice(0, max)
    .map((s) => s.name)
}

/** ` (did you mean X?)` (or `X or Y`), or nothing when no candidate is close. */
export function didYouMean(word: string, candidates: Iterable<string>, render: (name: string) => string = (n) => n): string {
  const matches = closestMatches(word, candidates)
  if (matches.length === 0) return ''
  return ` (did you mean ${matches.map(render).join(' or ')}?)`
}
