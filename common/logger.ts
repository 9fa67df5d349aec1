import { isatty } from 'node:tty'
import { createRequire } from 'node:module'
import pino, { type Bindings, type DestinationStream, type Logger, type LoggerOptions } from 'pino'
import type { PrettyOptions } from 'pino-pretty'

export type { Logger }

/**
 * Paths redacted in every readtrail log line. The audit log must never become
 * the next leak: record ids, raw session ids, SQL text and credentials stay out.
 */
export const REDACT_PATHS = [
  'record_ids',
  '*.record_ids',
  'recordIds',
  '*.recordIds',
  'sessionId',
  '*.sessionId',
  'query',
  '*.query',
  'password',
  '*.password',
  'sessionHashKey',
  '*.sessionHashKey',
]

export function createLogger(options: LoggerOptions = {}, destination?: DestinationStream): Logger {
  const merged = {
    level: process.env['READTRAIL_LOG_LEVEL'] ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    ...options,
  }
  return destination ? pino(merged, destination) : pino(merged)
}

/**
 * The logger of an SDK call that was given none: it writes nothing. An SDK
 * embedded in someone's application must not write to its stdout; the
 * application passes its own logger to hear from readtrail.
 */
export function silentLogger(): Logger {
  return pino({ level: 'silent', enabled: false })
}

export interface TerminalLoggerOptions {
  /** Where the lines go. @default 2 (stderr: stdout stays clean for results) */
  fd?: 1 | 2
  /** Human-readable lines (pino-pretty) rather than JSON. @default whether `fd` is a terminal */
  pretty?: boolean
  /** pino options (level...) merged over createLogger's defaults. */
  options?: LoggerOptions
  /** Writes here instead of `fd` (tests). */
  destination?: NodeJS.WritableStream
}

/**
 * The CLI's logger: one line per event, for a person on a terminal (level,
 * time, component and message, its fields on the same line) and JSON for
 * anything else (a pipe, a file, a log shipper), so machines keep parsing
 * what people no longer have to.
 */
export function createTerminalLogger(settings: TerminalLoggerOptions = {}): Logger {
  const fd = settings.fd ?? 2
  const pretty = settings.pretty ?? isatty(fd)
  if (!pretty) return createLogger(settings.options, settings.destination ?? pino.destination({ fd, sync: true }))
  const level = settings.options?.level ?? process.env['READTRAIL_LOG_LEVEL'] ?? 'info'
  const debugging = (pino.levels.values[level] ?? Infinity) <= pino.levels.values['debug']!
  const stream = prettyStream({
    destination: settings.destination ?? fd,
    sync: true,
    colorize: settings.destination === undefined && isatty(fd),
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    // A person reads the error's code and message in the line; its stack only when debugging.
    ignore: ['pid', 'hostname', 'component', 'subcomponent', ...(debugging ? [] : ['err'])].join(','),
    messageFormat: (log, messageKey) => formatMessage(log, messageKey),
  })
  return stream ? createLogger(settings.options, stream) : createLogger(settings.options, settings.destination ?? pino.destination({ fd, sync: true }))
}

/** `component/subcomponent: message: CODE: error message`, the line a person reads first. */
function formatMessage(log: Record<string, unknown>, messageKey: string): string {
  const where = [log['component'], log['subcomponent']].filter((p) => typeof p === 'string').join('/')
  const err = log['err'] as { code?: unknown; message?: unknown } | undefined
  const why = err && typeof err.message === 'string' ? `: ${typeof err.code === 'string' ? `${err.code}: ` : ''}${err.message}` : ''
  return `${where ? `${where}: ` : ''}${String(log[messageKey] ?? '')}${why}`
}

/**
 * pino-pretty, loaded only when a terminal asks for it: the SDK, which
 * imports this module, never pays for it, and a package installed without it
 * falls back to JSON rather than failing.
 */
function prettyStream(options: PrettyOptions): DestinationStream | undefined {
  try {
    const load = createRequire(import.meta.url)('pino-pretty') as { default?: (o: PrettyOptions) => DestinationStream } & ((o: PrettyOptions) => DestinationStream)
    return (load.default ?? load)(options)
  } catch {
    return undefined
  }
}

/** Binding keys a component's name may take, outermost first. */
const COMPONENT_KEYS = ['component', 'subcomponent'] as const

/**
 * The child logger of one component. pino writes every binding it is given,
 * so a component inside another's logger (kafkajs inside the producer's)
 * would print `component` twice in one JSON line: the inner name goes to
 * `subcomponent` instead, and a third level keeps the parent's names.
 */
export function componentLogger(parent: Logger, component: string, bindings: Bindings = {}): Logger {
  const bound = parent.bindings()
  const key = COMPONENT_KEYS.find((k) => !(k in bound))
  return parent.child(key ? { ...bindings, [key]: component } : bindings)
}
