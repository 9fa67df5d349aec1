/**
 * What validating one decoded event costs the chain writer: the zod
 * AccessEvent it used to run (`safeParse`) against the hand-written check it
 * runs now (`assertAccessEvent`, consumers/check-event.ts), on the same
 * realistic events, in the same run. No broker or store.
 *
 *   npx tsx bench/validate-event.ts [--events=20000] [--ids=10,100] [--rounds=7]
 *
 * The events are what the writer sees: encoded by the SDK's codec and decoded
 * again (avsc's record objects, flat strings), each a different object, so
 * the figures include reading them from memory rather than from a warm cache.
 * The two contenders alternate round by round and each keeps its median, so
 * a busy neighbour slows both alike.
 */
import { assertAccessEvent } from '../consumers/validate-event.js'
import { AccessEvent } from '../schemas/access-event.js'
import { createCodec } from '../schemas/codec.js'
import { loadSchemaRegistry } from '../schemas/registry.js'
import { parseBenchArgs } from './args.js'
import { machineLine, median, printTable, realisticEvents } from './bench-support.js'

const ARGS = parseBenchArgs('µs per event of validating decoded access events: the zod schema against the hand-written check the writer runs', {
  events: { type: 'number', default: 20_000, help: 'distinct decoded events per case' },
  ids: { type: 'list', default: [10, 100], help: 'record ids per event, one case each' },
  rounds: { type: 'number', default: 7, help: 'rounds per contender (median reported)' },
})

interface Contender {
  name: string
  /** Throws when the event is invalid; every bench event is valid. */
  validate: (event: unknown) => void
}

const CONTENDERS: readonly Contender[] = [
  {
    name: 'zod AccessEvent.safeParse',
    validate: (event) => {
      if (!AccessEvent.safeParse(event).success) throw new Error('zod refused a bench event')
    },
  },
  { name: 'assertAccessEvent (hand-written)', validate: assertAccessEvent },
]

/** µs per event over one pass of `events`. */
function microsPerEvent(contender: Contender, events: readonly unknown[]): number {
  const start = process.hrtime.bigint()
  for (const event of events) contender.validate(event)
  return Number(process.hrtime.bigint() - start) / 1000 / events.length
}

const codec = createCodec(loadSchemaRegistry())
console.log(`validate-event: ${machineLine()}; ${ARGS.events.toLocaleString('en-US')} events per case, ${ARGS.rounds} rounds`)
const rows: Record<string, string | number>[] = []
for (const ids of ARGS.ids) {
  const events = realisticEvents(ARGS.events, { recordIds: ids }).map((e) => codec.decode(codec.encode(e)).event)
  // Warm-up: both optimised before anything is timed.
  for (const c of CONTENDERS) microsPerEvent(c, events)
  const times = CONTENDERS.map(() => [] as number[])
  for (let round = 0; round < ARGS.rounds; round++) {
    CONTENDERS.forEach((c, i) => times[i]!.push(microsPerEvent(c, events)))
  }
  const [zod, check] = times.map((t) => median(t))
  for (const [i, c] of CONTENDERS.entries()) rows.push({ 'record ids': ids, validator: c.name, 'µs/event': median(times[i]!), 'events/s': 1e6 / median(times[i]!) })
  rows.push({ 'record ids': ids, validator: 'ratio zod / hand-written', 'µs/event': `${(zod! / check!).toFixed(1)}×`, 'events/s': '' })
}
printTable('Validating one decoded event (median of the rounds)', rows)
