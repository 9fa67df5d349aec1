import { describe, expect, it } from 'vitest'
import { findChainViolations, findDeliveryViolations } from '../helpers/integrity.js'

const at = (chain_id: string, seq: number, event_id = `${chain_id}-${seq}`) => ({ chain_id, seq, event_id })

describe('findChainViolations', () => {
  it('accepts contiguous chains in any row order', () => {
    expect(findChainViolations([at('a', 2), at('b', 1), at('a', 1), at('a', 3)])).toEqual([])
  })
  it('reports a gap', () => {
    expect(findChainViolations([at('a', 1), at('a', 3)])).toEqual(['chain a: position 2 holds seq 3'])
  })
  it('reports a chain that does not start at 1', () => {
    expect(findChainViolations([at('a', 2)])).toHaveLength(1)
  })
  it('reports a repeated sequence number', () => {
    expect(findChainViolations([at('a', 1), at('a', 1, 'x')]).length).toBeGreaterThan(0)
  })
  it('reports an event stored twice', () => {
    expect(findChainViolations([at('a', 1, 'e'), at('b', 1, 'e')])).toEqual(['event e stored twice (a#1 and b#1)'])
  })
})

describe('findDeliveryViolations', () => {
  it('accepts exactly-once delivery', () => {
    expect(findDeliveryViolations(['x', 'y'], ['y', 'x'])).toEqual([])
  })
  it('reports missing, duplicated and unexpected events', () => {
    expect(findDeliveryViolations(['x', 'x', 'z'], ['x', 'y'])).toEqual(['event y missing', 'event x stored 2 times', 'event z was never produced'])
  })
})
