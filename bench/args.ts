import { basename } from 'node:path'
import { parseArgs } from 'node:util'

/** One bench option: `--name=value` (or `--name value`), else `BENCH_NAME` in the environment, else the default. */
export type BenchOption =
  | { type: 'number'; default: number; help: string }
  | { type: 'string'; default: string; help: string }
  /** Numbers separated by commas, e.g. `--concurrency=1,16,256`. */
  | { type: 'list'; default: readonly number[]; help: string }
  /** `--name` alone, or BENCH_NAME=1|yes|true. */
  | { type: 'flag'; help: string }

export type BenchOptions = Record<string, BenchOption>

type ValueOf<O extends BenchOption> = O extends { type: 'number' } ? number : O extends { type: 'string' } ? string : O extends { type: 'list' } ? number[] : boolean

export type BenchArgs<S extends BenchOptions> = { readonly [K in keyof S]: ValueOf<S[K]> }

/** The Kafka options of every bench that talks to the broker (benchKafkaConnection reads them). */
export const KAFKA_OPTIONS = {
  brokers: { type: 'string', default: '', help: 'host:port,… (default READTRAIL_KAFKA_BROKERS, else 127.0.0.1:19092)' },
} as const satisfies BenchOptions

let parsedBrokers: string | undefined

/**
 * Parses this bench's command line with node:util parseArgs, strictly: an
 * unknown or misspelt option, or a value of the wrong kind, stops the bench
 * before it spends minutes measuring with a default. `--help` lists the
 * options. With `rowsPositional`, a bare number is the `rows` option
 * (`npx tsx bench/verify-modes.ts 10_000_000`).
 */
export function parseBenchArgs<const S extends BenchOptions>(summary: string, spec: S, settings: { rowsPositional?: boolean } = {}): BenchArgs<S> {
  const script = `bench/${basename(process.argv[1] ?? 'bench')}`
  try {
    const { values: parsed, positionals } = parseArgs({
      args: process.argv.slice(2),
      strict: true,
      allowPositionals: settings.rowsPositional ?? false,
      options: {
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(Object.entries(spec).map(([name, option]) => [name, { type: option.type === 'flag' ? ('boolean' as const) : ('string' as const) }])),
      },
    })
    const values = parsed as Record<string, string | boolean | undefined>
    if (values['help'] === true) {
      process.stdout.write(usage(script, summary, spec, settings))
      process.exit(0)
    }
    if (positionals.length > 1 || positionals.some((p) => !/^\d[\d_]*$/.test(p))) throw new TypeError(`unexpected argument(s) ${positionals.join(' ')}: the only positional is a number of rows`)
    const out: Record<string, unknown> = {}
    for (const [name, option] of Object.entries(spec)) {
      const given = name === 'rows' && positionals[0] !== undefined ? positionals[0] : values[name]
      const env = process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`]
      out[name] = valueOf(name, option, given ?? env)
    }
    if ('brokers' in spec) parsedBrokers = out['brokers'] as string
    return Object.freeze(out) as BenchArgs<S>
  } catch (err) {
    process.stderr.write(`${script}: ${(err as Error).message}; see ${script} --help\n`)
    process.exit(2)
  }
}

/** The brokers the bench was given, or the default; for benches that spread KAFKA_OPTIONS into their options. */
export function benchBrokers(): string[] {
  if (parsedBrokers === undefined) throw new Error('this bench did not declare KAFKA_OPTIONS in parseBenchArgs')
  return (parsedBrokers || process.env['READTRAIL_KAFKA_BROKERS'] || '127.0.0.1:19092').split(',')
}

function valueOf(name: string, option: BenchOption, raw: string | boolean | undefined): unknown {
  switch (option.type) {
    case 'flag':
      return typeof raw === 'boolean' ? raw : ['1', 'yes', 'true'].includes(raw ?? '')
    case 'string':
      return typeof raw === 'string' ? raw : option.default
    case 'number': {
      if (typeof raw !== 'string') return option.default
      const value = Number(raw.replace(/_/g, ''))
      if (raw.trim() === '' || !Number.isFinite(value)) throw new RangeError(`option --${name} must be a number (got '${raw}')`)
      return value
    }
    case 'list': {
      if (typeof raw !== 'string') return [...option.default]
      return raw.split(',').map((v) => {
        const n = Number(v.replace(/_/g, ''))
        if (v.trim() === '' || !Number.isFinite(n)) throw new RangeError(`option --${name} must be numbers separated by commas (got '${raw}')`)
        return n
      })
    }
  }
}

function usage(script: string, summary: string, spec: BenchOptions, settings: { rowsPositional?: boolean }): string {
  const lines = Object.entries(spec).map(([name, option]) => {
    const flag = option.type === 'flag' ? `--${name}` : `--${name}=${option.type === 'list' ? option.default.join(',') : String(option.default)}`
    return `  ${flag.padEnd(34)} ${option.help}`
  })
  return [
    `usage: npx tsx ${script}${settings.rowsPositional ? ' [ROWS]' : ''} [options]`,
    summary,
    '',
    'options (shown with their defaults; each also read from BENCH_<NAME> in the environment, dashes as underscores):',
    ...lines,
    '',
  ].join('\n')
}
