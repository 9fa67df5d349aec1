import { describe, expect, it } from 'vitest'
import { ipToIPv6Bytes } from '../../store/ip.js'

/** 16 bytes from eight 16-bit groups, written out by hand. */
function groups(...g: number[]): number[] {
  if (g.length !== 8) throw new Error('an IPv6 address has 8 groups')
  return g.flatMap((x) => [x >> 8, x & 0xff])
}

describe('ipToIPv6Bytes', () => {
  it.each([
    ['0.0.0.0', groups(0, 0, 0, 0, 0, 0xffff, 0, 0)],
    ['1.2.3.4', groups(0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304)],
    ['192.168.0.255', groups(0, 0, 0, 0, 0, 0xffff, 0xc0a8, 0x00ff)],
    ['255.255.255.255', groups(0, 0, 0, 0, 0, 0xffff, 0xffff, 0xffff)],
  ])('maps IPv4 %s to ::ffff:a.b.c.d', (ip, expected) => {
    expect([...ipToIPv6Bytes(ip)]).toEqual(expected)
  })

  it.each([
    ['::', groups(0, 0, 0, 0, 0, 0, 0, 0)],
    ['::1', groups(0, 0, 0, 0, 0, 0, 0, 1)],
    ['1::', groups(1, 0, 0, 0, 0, 0, 0, 0)],
    ['2001:db8::1', groups(0x2001, 0x0db8, 0, 0, 0, 0, 0, 1)],
    ['2001:DB8:0:0:8:800:200C:417A', groups(0x2001, 0x0db8, 0, 0, 8, 0x800, 0x200c, 0x417a)],
    ['fe80::1%eth0', groups(0xfe80, 0, 0, 0, 0, 0, 0, 1)],
    ['::ffff:1.2.3.4', groups(0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304)],
    ['64:ff9b::192.0.2.33', groups(0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x0221)],
    ['1:2:3:4:5:6:7:8', groups(1, 2, 3, 4, 5, 6, 7, 8)],
    ['1:2:3::6:7:8', groups(1, 2, 3, 0, 0, 6, 7, 8)],
  ])('parses IPv6 %s', (ip, expected) => {
    expect([...ipToIPv6Bytes(ip)]).toEqual(expected)
  })

  it('gives an IPv4 address and its mapped IPv6 form the same bytes', () => {
    expect(ipToIPv6Bytes('10.20.30.40').equals(ipToIPv6Bytes('::ffff:10.20.30.40'))).toBe(true)
    expect(ipToIPv6Bytes('10.20.30.40').equals(ipToIPv6Bytes('::ffff:a14:1e28'))).toBe(true)
  })

  it.each(['', 'nohost', '1.2.3', '1.2.3.256', '1.2.3.4.5', '::g', '1:2:3:4:5:6:7:8:9', '2001:db8:::1', ' 1.2.3.4'])(
    'throws a RangeError for %j',
    (ip) => {
      expect(() => ipToIPv6Bytes(ip)).toThrow(RangeError)
    },
  )
})
