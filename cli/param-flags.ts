import { ReadtrailError } from '../common/errors.js'

/** `--param k=v` flags → raw parameters; a repeated name is an error, not a silent overwrite. */
export function parseParamFlags(flags: readonly string[]): Record<string, string> {
  const raw: Record<string, string> = {}
  for (const p of flags) {
    const eq = p.indexOf('=')
    if (eq <= 0) throw new ReadtrailError('USAGE', `--param takes name=value, got ${JSON.stringify(p)}`)
    const key = p.slice(0, eq)
    if (Object.hasOwn(raw, key)) throw new ReadtrailError('USAGE', `--param ${key} given twice; lists are comma-separated (${key}=a,b)`)
    raw[key] = p.slice(eq + 1)
  }
  return raw
}
