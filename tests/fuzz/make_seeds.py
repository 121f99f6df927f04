#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpora of the fuzz harnesses:
tests/fuzz/corpus/msg/ for fuzz_msg.c, tests/fuzz/corpus/ring/ for
fuzz_ring.c and tests/fuzz/corpus/net_hdr/ for fuzz_net_hdr.c.  The input
formats are described at the top of each harness; the constants below must
match them.  Run from anywhere:

    python3 tests/fuzz/make_seeds.py

The crash-*.bin files next to the generated seeds are inputs the fuzzers
found, kept as regression seeds; this script leaves them alone.
"""
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent

# vhost-user requests (common/include/vu_msg.h)
GET_FEATURES, SET_FEATURES, SET_OWNER, RESET_OWNER, SET_MEM_TABLE = 1, 2, 3, 4, 5
SET_LOG_BASE, SET_LOG_FD, SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE = 6, 7, 8, 9, 10
GET_VRING_BASE, SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR = 11, 12, 13, 14
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM = 15, 16, 17
SET_VRING_ENABLE, SEND_RARP, NET_SET_MTU, SET_BACKEND_REQ_FD = 18, 19, 20, 21
GET_CONFIG, SET_CONFIG, GET_INFLIGHT_FD, SET_INFLIGHT_FD = 24, 25, 31, 32
RESET_DEVICE, VRING_KICK, GET_MAX_MEM_SLOTS, ADD_MEM_REG, REM_MEM_REG = 34, 35, 36, 37, 38
SET_STATUS, GET_STATUS = 39, 40

VERSION, NEED_REPLY = 0x1, 0x8
NOFD = 1 << 8

# Feature bits
F_LOG_ALL, F_INDIRECT, F_EVENT_IDX, F_PROTOCOL = 26, 28, 29, 30
F_VERSION_1, F_RING_PACKED = 32, 34
FEATURES = (1 << F_VERSION_1) | (1 << F_EVENT_IDX) | (1 << F_INDIRECT) | \
    (1 << F_PROTOCOL) | (1 << 1) | (1 << 2)
PROTO = sum(1 << b for b in (0, 1, 2, 3, 4, 9, 12, 13, 15, 16))

# Descriptor flags
D_NEXT, D_WRITE, D_INDIRECT = 1, 2, 4
P_AVAIL, P_USED = 1 << 7, 1 << 15


def u16(v): return struct.pack('<H', v & 0xffff)
def u32(v): return struct.pack('<I', v & 0xffffffff)
def u64(v): return struct.pack('<Q', v & 0xffffffffffffffff)
def state(index, num): return u32(index) + u32(num)
def region(gpa, size, uva, off): return u64(gpa) + u64(size) + u64(uva) + u64(off)
def mem_table(*regions): return u32(len(regions)) + u32(0) + b''.join(regions)
def vring_addr(index, desc, avail, used, flags=0, log=0):
    # struct vhost_vring_addr: used_user_addr comes before avail_user_addr
    return u32(index) + u32(flags) + u64(desc) + u64(used) + u64(avail) + u64(log)
def split_desc(addr, length, flags=0, nxt=0): return u64(addr) + u32(length) + u16(flags) + u16(nxt)
def packed_desc(addr, length, bid, flags): return u64(addr) + u32(length) + u16(bid) + u16(flags)
def inflight(size, off, nq, qs): return u64(size) + u64(off) + u16(nq) + u16(qs) + u32(0)


# ---- fuzz_msg ---------------------------------------------------------------
# Guest memory file of 256 KiB, two regions of 128 KiB; rings of 256 entries
# in region 0 (queue q at 0x1000 + q * 0x4000), buffers in region 1.
M_R0 = region(0x00000, 0x20000, 0x7f0000000000, 0x00000)
M_R1 = region(0x20000, 0x20000, 0x7f0000100000, 0x20000)
M_UVA0, M_BUF = 0x7f0000000000, 0x20000
FD_GUEST, FD_EVENT, FD_SMALL = 0, 1, 2


def rec(req, payload=b'', flags=VERSION | NEED_REPLY, nfds=0, kind=FD_GUEST):
    return bytes([req, flags, kind << 4 | nfds]) + u16(len(payload)) + payload


def memw(off, data):
    return rec(0xff, u32(off) + data, flags=0)


def m_ring(q):
    return 0x1000 + q * 0x4000


def negotiate(features=FEATURES):
    return b''.join([
        rec(GET_FEATURES, flags=VERSION),
        rec(GET_PROTOCOL_FEATURES, flags=VERSION),
        rec(SET_PROTOCOL_FEATURES, u64(PROTO), flags=VERSION),
        rec(GET_QUEUE_NUM),
        rec(GET_MAX_MEM_SLOTS),
        rec(SET_OWNER),
        rec(SET_FEATURES, u64(features)),
        rec(SET_MEM_TABLE, mem_table(M_R0, M_R1), nfds=2, kind=FD_GUEST),
    ])


def start_queue(q, size=256, base=0, packed=False, addr_flags=0):
    ring = m_ring(q)
    return b''.join([
        rec(SET_VRING_NUM, state(q, size)),
        rec(SET_VRING_BASE, state(q, base | (0x8000 if packed else 0))),
        rec(SET_VRING_ADDR, vring_addr(q, M_UVA0 + ring, M_UVA0 + ring + 0x1000,
                                       M_UVA0 + ring + 0x2000, addr_flags, ring + 0x2000)),
        rec(SET_VRING_KICK, u64(q), nfds=1, kind=FD_EVENT),
        rec(SET_VRING_CALL, u64(q), nfds=1, kind=FD_EVENT),
        rec(SET_VRING_ENABLE, state(q, 1)),
    ])


def split_chains(q, base=0):
    """Three chains: a writable buffer, readable + writable, an indirect table."""
    ring = m_ring(q)
    descs = [
        split_desc(M_BUF + 0x000, 0x100, D_WRITE),
        split_desc(M_BUF + 0x100, 0x10, D_NEXT, 2),
        split_desc(M_BUF + 0x200, 0x200, D_WRITE),
        split_desc(M_BUF + 0x1000, 3 * 16, D_INDIRECT),
    ]
    table = b''.join([
        split_desc(M_BUF + 0x400, 0x20, D_NEXT, 1),
        split_desc(M_BUF + 0x500, 0x40, D_NEXT | D_WRITE, 2),
        split_desc(M_BUF + 0x600, 0x40, D_WRITE),
    ])
    heads = [0, 1, 3]
    return b''.join([
        memw(ring, b''.join(descs)),
        memw(ring + 0x1000, split_avail(256, base + len(heads), heads, start=base % 256)),
        memw(ring + 0x2000, u16(0) + u16(base)),
        memw(M_BUF + 0x1000, table),
    ])


def packed_chains(q):
    """Two chains with the driver's wrap counter 1: one of two descriptors, one indirect."""
    ring = m_ring(q)
    descs = [
        packed_desc(M_BUF + 0x000, 0x10, 0, P_AVAIL | D_NEXT),
        packed_desc(M_BUF + 0x100, 0x100, 0, P_AVAIL | D_WRITE),
        packed_desc(M_BUF + 0x1000, 2 * 16, 1, P_AVAIL | D_INDIRECT),
    ]
    table = packed_desc(M_BUF + 0x400, 0x20, 0, 0) + packed_desc(M_BUF + 0x500, 0x40, 0, D_WRITE)
    return memw(ring, b''.join(descs)) + memw(M_BUF + 0x1000, table)


def msg_seeds():
    seeds = {}
    seeds['qemu-split'] = b''.join([
        negotiate(),
        rec(GET_INFLIGHT_FD, inflight(0, 0, 2, 256)),
        rec(SET_INFLIGHT_FD, inflight(0x10000, 0, 2, 256), nfds=1, kind=FD_SMALL),
        split_chains(0),
        start_queue(0), start_queue(1),
        rec(GET_VRING_BASE, state(0, 0)),
        rec(GET_VRING_BASE, state(1, 0)),
    ])
    seeds['qemu-packed'] = b''.join([
        negotiate(FEATURES | 1 << F_RING_PACKED),
        packed_chains(0),
        start_queue(0, size=256, packed=True),
        rec(SET_VRING_NUM, state(1, 100)),
        rec(GET_VRING_BASE, state(0, 0)),
    ])
    seeds['mem-slots'] = b''.join([
        rec(SET_PROTOCOL_FEATURES, u64(PROTO), flags=VERSION),
        rec(SET_OWNER),
        rec(SET_FEATURES, u64(FEATURES)),
        rec(ADD_MEM_REG, u64(0) + M_R0, nfds=1),
        rec(ADD_MEM_REG, u64(0) + M_R1, nfds=1),
        split_chains(0),
        start_queue(0),
        rec(REM_MEM_REG, u64(0) + M_R0),
        rec(ADD_MEM_REG, u64(0) + M_R0, nfds=1),
        rec(SET_MEM_TABLE, mem_table(M_R1, M_R0), nfds=2),
        rec(GET_VRING_BASE, state(0, 0)),
    ])
    seeds['dirty-log'] = b''.join([
        negotiate(FEATURES | 1 << F_LOG_ALL),
        rec(SET_LOG_BASE, u64(0x1000) + u64(0), nfds=1, kind=FD_SMALL),
        rec(SET_LOG_FD, nfds=1, kind=FD_EVENT),
        split_chains(0),
        start_queue(0, addr_flags=1),
        rec(SET_FEATURES, u64(FEATURES)),
        rec(GET_VRING_BASE, state(0, 0)),
    ])
    seeds['inflight-restart'] = b''.join([
        negotiate(),
        rec(SET_INFLIGHT_FD, inflight(0x10000, 0, 2, 256), nfds=1, kind=FD_SMALL),
        split_chains(0, base=7),
        start_queue(0, base=7),
        rec(GET_VRING_BASE, state(0, 0)),
        split_chains(0, base=10),
        start_queue(0, base=10),
        rec(GET_VRING_BASE, state(0, 0)),
    ])
    seeds['misc'] = b''.join([
        negotiate(),
        rec(GET_CONFIG, u32(0) + u32(60) + u32(0)),
        rec(SET_CONFIG, u32(4) + u32(4) + u32(0) + b'abcd'),
        rec(SET_STATUS, u64(0xf)),
        rec(GET_STATUS),
        rec(SEND_RARP, b'\x52\x54\x00\x12\x34\x56\0\0'),
        rec(NET_SET_MTU, u64(1500)),
        rec(SET_BACKEND_REQ_FD, nfds=1, kind=FD_EVENT),
        rec(SET_VRING_ERR, u64(0), nfds=1, kind=FD_EVENT),
        rec(VRING_KICK, state(0, 0)),
        rec(RESET_DEVICE),
        rec(SET_FEATURES, u64(FEATURES)),
        start_queue(1),
        rec(RESET_OWNER),
    ])
    seeds['hostile'] = b''.join([
        rec(SET_MEM_TABLE, mem_table(M_R0, M_R1), nfds=2),          # before SET_OWNER
        rec(SET_PROTOCOL_FEATURES, u64(PROTO), flags=VERSION),
        rec(SET_OWNER),
        rec(SET_FEATURES, u64(FEATURES), flags=0),                  # version 0
        rec(SET_FEATURES, u64(1 << 63)),                            # not offered
        rec(SET_FEATURES, u64(FEATURES)),
        rec(SET_MEM_TABLE, mem_table(M_R0, M_R1), nfds=1),          # fd missing
        rec(SET_MEM_TABLE, mem_table(M_R0, M_R0), nfds=2),          # overlap
        rec(SET_MEM_TABLE, mem_table(M_R0, M_R1), nfds=2),
        rec(SET_VRING_NUM, state(0x10000, 256)),                    # index truncates to 0
        rec(SET_VRING_NUM, state(0, 100)),                          # not a power of two
        rec(SET_VRING_NUM, state(0, 16)),
        rec(SET_VRING_ADDR, vring_addr(0, M_UVA0 + 0x20000 - 256, M_UVA0 + 0x8000,
                                       M_UVA0 + 0x9000)),
        rec(SET_VRING_NUM, state(0, 256)),                          # ring now too big
        rec(SET_VRING_KICK, u64(0), nfds=1, kind=FD_EVENT),
        rec(SET_VRING_KICK, u64(0x200), nfds=1, kind=FD_EVENT),     # unknown bits
        rec(SET_LOG_BASE, u64(1) + u64(0), nfds=1, kind=FD_SMALL),  # log too small
        rec(SET_LOG_BASE, u64(0x1000) + u64(0), nfds=2, kind=FD_SMALL),
        rec(GET_INFLIGHT_FD, inflight(0, 0, 3, 256)),
    ])
    return seeds


# ---- fuzz_ring ----------------------------------------------------------------
# Two regions of 64 KiB adjacent in gpa; descriptors at gpa 0, driver area at
# 0x4000, device area at 0x5000, indirect tables in the first 1 KiB of region 1.
R1 = 0x10000
BUF = R1 + 0x1000
INDIRECT_LEN = 0x400
C_PACKED, C_EVENT_IDX, C_INDIRECT, C_LOG, C_INFLIGHT, C_CALL = 1, 2, 4, 8, 16, 32


def inflight_region_size(qsize):
    # common/inflight.c: the packed layout's size, 64-byte aligned
    n = 32 + 32 * qsize
    return (n + 63) & ~63


def act_round(budget=16, complete=True, how=1, v=0):
    return bytes([(how << 3) | (4 if complete else 0), budget - 1]) + u16(v)


def act_driver(off16, v):
    return bytes([1 | (off16 >> 8) << 2, off16 & 0xff]) + u16(v)


def act_desc(off16, v):
    return bytes([2 | (off16 >> 8) << 2, off16 & 0xff]) + u16(v)


def act_notify():
    return bytes([3, 0]) + u16(0)


def ring_input(cfg, qsize_sel, qsize, base, niov, driver, descs, used=b'', region=None,
               indirect=b'', actions=b''):
    packed = cfg & C_PACKED
    driver_len = 4 if packed else 4 + 2 * qsize + 2
    out = bytes([cfg]) + u16(qsize_sel) + u32(base) + bytes([niov - 1])
    out += driver.ljust(driver_len, b'\0')
    out += descs.ljust(16 * qsize, b'\0')
    if not packed:
        out += used.ljust(4, b'\0')
    if cfg & C_INFLIGHT:
        out += (region or b'').ljust(inflight_region_size(qsize), b'\0')
    out += indirect.ljust(INDIRECT_LEN, b'\0')
    return out + actions


def split_avail(qsize, idx, heads, start=0, used_event=0):
    ring = [0] * qsize
    for i, h in enumerate(heads):
        ring[(start + i) % qsize] = h
    return u16(0) + u16(idx) + b''.join(u16(h) for h in ring) + u16(used_event)


def ring_seeds():
    seeds = {}
    # split, 8 entries: writable buffer; readable + writable; indirect.
    descs = b''.join([
        split_desc(BUF, 0x200, D_WRITE),
        split_desc(BUF + 0x200, 0x10, D_NEXT, 2),
        split_desc(BUF + 0x300, 0x100, D_WRITE),
        split_desc(R1, 3 * 16, D_INDIRECT),
    ])
    table = b''.join([
        split_desc(BUF + 0x400, 0x20, D_NEXT, 1),
        split_desc(BUF + 0x500, 0x40, D_NEXT | D_WRITE, 2),
        split_desc(BUF + 0x600, 0x40, D_WRITE),
    ])
    more = act_desc(0, 0) + act_driver(2 + 3, 0) + act_driver(1, 4)  # head 0 again
    seeds['split-basic'] = ring_input(
        C_EVENT_IDX | C_INDIRECT | C_CALL, 3, 8, 0, 8, split_avail(8, 3, [0, 1, 3]), descs,
        indirect=table, actions=act_round() + act_notify() + more + act_round())
    # a buffer across the region boundary: two iovecs
    seeds['split-cross-region'] = ring_input(
        C_CALL, 2, 4, 0, 4, split_avail(4, 1, [0]),
        split_desc(R1 - 0x100, 0x200, D_WRITE), actions=act_round(how=3, v=0x180))
    # indexes about to wrap at 65535
    seeds['split-wrap'] = ring_input(
        C_EVENT_IDX, 2, 4, 65534, 4, split_avail(4, 1, [0, 1, 2], start=65534 % 4),
        descs[:48], used=u16(0) + u16(65534),
        actions=act_round(budget=2, complete=False) + act_round())
    # dirty log and inflight tracking
    seeds['split-log-inflight'] = ring_input(
        C_LOG | C_INFLIGHT | C_CALL | C_EVENT_IDX, 3, 8, 0, 8, split_avail(8, 2, [0, 1]),
        descs, actions=act_round(budget=1, complete=False) + act_round())
    # a chain that loops
    seeds['split-loop'] = ring_input(
        0, 3, 8, 0, 8, split_avail(8, 1, [0]),
        split_desc(BUF, 0x10, D_NEXT, 1) + split_desc(BUF, 0x10, D_NEXT, 0),
        actions=act_round())
    # packed, 8 entries, driver wrap counter 1
    pdescs = b''.join([
        packed_desc(BUF, 0x10, 0, P_AVAIL | D_NEXT),
        packed_desc(BUF + 0x100, 0x100, 0, P_AVAIL | D_WRITE),
        packed_desc(R1, 2 * 16, 1, P_AVAIL | D_INDIRECT),
        packed_desc(BUF + 0x300, 0x80, 2, P_AVAIL | D_WRITE),
    ])
    ptable = packed_desc(BUF + 0x400, 0x20, 0, 0) + packed_desc(BUF + 0x500, 0x40, 0, D_WRITE)
    seeds['packed-basic'] = ring_input(
        C_PACKED | C_INDIRECT | C_CALL, 7, 8, 0x8000, 8, u32(0), pdescs, indirect=ptable,
        actions=act_round() + act_notify() + act_round())
    seeds['packed-event-idx-inflight'] = ring_input(
        C_PACKED | C_EVENT_IDX | C_INFLIGHT | C_LOG | C_CALL, 7, 8, 0x8000, 8,
        u16(0x8002) + u16(2), pdescs, indirect=ptable,
        actions=act_round(budget=1, complete=False) + act_round())
    # one chain as long as the ring (4): the wrap counter flips exactly once
    full = b''.join(packed_desc(BUF + 0x100 * i, 0x40, 3, P_AVAIL | D_WRITE | (D_NEXT if i < 3 else 0))
                    for i in range(4))
    seeds['packed-full-chain'] = ring_input(
        C_PACKED | C_CALL, 3, 4, 0x8000, 8, u32(0), full,
        actions=act_round() + act_desc(7, P_AVAIL | D_WRITE) + act_round())
    return seeds


# ---- fuzz_net_hdr -------------------------------------------------------------
# Control bytes, then struct virtio_net_hdr, then the frame (fuzz_net_hdr.c).
TX_CSUM, TX_TSO4, TX_TSO6, TX_ECN, TX_UFO, TX_FIXUP = 1, 2, 4, 8, 16, 0x80
TX_ALL = TX_CSUM | TX_TSO4 | TX_TSO6
RX_CSUM, RX_TSO4, RX_TSO6 = 1, 2, 4
RX_ALL = RX_CSUM | RX_TSO4 | RX_TSO6
CAN_CSUM, CAN_TSO4, CAN_TSO6, CAN_IPCSUM = 1, 2, 4, 8
EG_GUEST, EG_TIGHT, EG_SMALL_MAX = 0x10, 0x20, 0x40
NEEDS_CSUM = 1
GSO_NONE, GSO_TCPV4, GSO_UDP, GSO_TCPV6, GSO_ECN = 0, 1, 3, 4, 0x80
ETH, IP4, IP6, TCP, UDP = 14, 20, 40, 20, 8
MAC = bytes.fromhex('020000000002' '020000000001')
FULL = 2047          # seg0/segn: 1 + 2047 = 2048 bytes per mbuf, as txrx.c fills them


def csum_fold(data):
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s


def net_ctl(tx=TX_ALL, rx=RX_ALL, egress=0, mx=0, seg0=FULL, segn=FULL, extra=0):
    return bytes([tx, rx, egress, mx]) + u16(seg0) + u16(segn) + u16(extra)


def vnet_hdr(flags=0, gso=GSO_NONE, hdr_len=0, gso_size=0, start=0, off=0):
    return bytes([flags, gso]) + u16(hdr_len) + u16(gso_size) + u16(start) + u16(off)


def eth(ethertype, vlan=()):
    out = MAC
    for tpid, tci in vlan:
        out += struct.pack('!HH', tpid, tci)
    return out + struct.pack('!H', ethertype)


def payload(n):
    return bytes((i * 7 + 3) & 0xff for i in range(n))


def l4_hdr(proto, length, phdr, tcp_flags=0x18):
    """TCP or UDP header with the pseudo-header sum in the checksum field."""
    if proto == 6:
        return struct.pack('!HHIIBBHHH', 1000, 2000, 0xfffff000, 1, 5 << 4, tcp_flags, 1000,
                           phdr, 0)
    return struct.pack('!HHHH', 1000, 2000, length, phdr)


def ipv4(proto, l4len, frag=0x4000, options=b''):
    ihl = 5 + len(options) // 4
    h = struct.pack('!BBHHHBBH4s4s', 0x40 | ihl, 0, ihl * 4 + l4len, 0x1234, frag, 64, proto, 0,
                    bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + options
    c = (~csum_fold(h)) & 0xffff
    h = h[:10] + struct.pack('!H', c) + h[12:]
    phdr = csum_fold(h[12:20] + struct.pack('!BBH', 0, proto, l4len))
    return h, phdr


def ipv6(proto, l4len, ext=b'', first=None):
    """IPv6 header (next header `first` if there are extension headers)."""
    src = bytes([0xfd] + [0] * 14 + [1])
    dst = bytes([0xfd] + [0] * 14 + [2])
    h = struct.pack('!IHBB', 6 << 28, len(ext) + l4len, first if ext else proto, 64) + src + dst
    phdr = csum_fold(src + dst + struct.pack('!IxxxB', l4len, proto))
    return h + ext, phdr


def frame4(proto, n, vlan=(), frag=0x4000, options=b'', tcp_flags=0x18):
    l4len = (TCP if proto == 6 else UDP) + n
    ip, phdr = ipv4(proto, l4len, frag, options)
    return eth(0x0800, vlan) + ip + l4_hdr(proto, l4len, phdr, tcp_flags) + payload(n)


def frame6(proto, n, vlan=(), ext=b'', first=None):
    l4len = (TCP if proto == 6 else UDP) + n
    ip, phdr = ipv6(proto, l4len, ext, first)
    return eth(0x86dd, vlan) + ip + l4_hdr(proto, l4len, phdr) + payload(n)


def csum_hdr(l4start, proto, gso=GSO_NONE, gso_size=0, hdr_len=0):
    return vnet_hdr(NEEDS_CSUM, gso, hdr_len, gso_size, l4start, 16 if proto == 6 else 6)


def net_seeds():
    seeds = {}
    L4_4, L4_6 = ETH + IP4, ETH + IP6
    # Checksum offload, to egresses that can and cannot finish it.
    for name, fr, start, proto in [
            ('ipv4-tcp', frame4(6, 1000), L4_4, 6),
            ('ipv4-udp', frame4(17, 1200), L4_4, 17),
            ('ipv6-tcp', frame6(6, 1000), L4_6, 6),
            ('ipv6-udp', frame6(17, 3000), L4_6, 17),
            ('ipv4-tcp-3seg', frame4(6, 5000), L4_4, 6)]:
        h = csum_hdr(start, proto)
        seeds[name + '-csum-sw'] = net_ctl(egress=0) + h + fr
        seeds[name + '-csum-guest'] = net_ctl(egress=EG_GUEST) + h + fr
        seeds[name + '-csum-uplink'] = net_ctl(egress=CAN_CSUM | CAN_IPCSUM) + h + fr
    # A UDP checksum that comes out 0 (sent as 0xffff): the last payload
    # word makes the sum with the checksum field zeroed all ones.
    fr = bytearray(frame4(17, 100))
    phdr = ipv4(17, UDP + 100)[1]
    fr[-2:] = b'\0\0'
    fr[L4_4 + 6:L4_4 + 8] = b'\0\0'
    fr[-2:] = struct.pack('!H', 0xffff - csum_fold(bytes(fr[L4_4:]) + struct.pack('!H', phdr)))
    fr[L4_4 + 6:L4_4 + 8] = struct.pack('!H', phdr)
    seeds['ipv4-udp-csum-zero'] = net_ctl(egress=0) + csum_hdr(L4_4, 17) + bytes(fr)
    seeds['ipv4-udp-csum-guest-nocsum'] = net_ctl(rx=0, egress=EG_GUEST) + \
        csum_hdr(L4_4, 17) + frame4(17, 60)
    # A checksum at an offset no egress offloads (completed at once), in a
    # chain; an odd csum_start gave a wrong sum (rte_raw_cksum_mbuf()).
    fr = frame4(6, 3000)
    seeds['csum-generic-even'] = net_ctl() + vnet_hdr(NEEDS_CSUM, start=ETH, off=10) + fr
    seeds['csum-generic-odd'] = net_ctl() + vnet_hdr(NEEDS_CSUM, start=ETH + 1, off=9) + fr
    seeds['csum-field-in-second-mbuf'] = net_ctl(seg0=L4_4 + 10 - 1) + csum_hdr(L4_4, 6) + fr
    # TSO: software segmentation (librte_gso for IPv4, copies for IPv6), or
    # left to a guest / uplink that segments.
    for size in (3000, 9000):
        f4, f6 = frame4(6, size - ETH - IP4 - TCP), frame6(6, size - ETH - IP6 - TCP)
        h4 = csum_hdr(L4_4, 6, GSO_TCPV4, 1448, L4_4 + TCP)
        h6 = csum_hdr(L4_6, 6, GSO_TCPV6, 1448, L4_6 + TCP)
        seeds['gso-tcp4-%d-sw' % size] = net_ctl(egress=0) + h4 + f4
        seeds['gso-tcp6-%d-sw' % size] = net_ctl(egress=0) + h6 + f6
        seeds['gso-tcp4-%d-guest' % size] = net_ctl(egress=EG_GUEST) + h4 + f4
        seeds['gso-tcp6-%d-guest' % size] = net_ctl(egress=EG_GUEST) + h6 + f6
        seeds['gso-tcp4-%d-csum-only-guest' % size] = net_ctl(rx=RX_CSUM, egress=EG_GUEST) + h4 + f4
        seeds['gso-tcp4-%d-uplink-tso' % size] = net_ctl(egress=CAN_CSUM | CAN_TSO4) + h4 + f4
        seeds['gso-tcp6-%d-uplink-tso4' % size] = net_ctl(egress=CAN_CSUM | CAN_TSO4) + h6 + f6
    # An odd gso_size: librte_gso's segments then have parts at odd offsets
    # (wrong checksums before offload.c stopped using rte_raw_cksum_mbuf()).
    f4 = frame4(6, 8000)
    seeds['gso-tcp4-odd-mss'] = net_ctl(egress=0) + csum_hdr(L4_4, 6, GSO_TCPV4, 1001, 54) + f4
    seeds['gso-tcp4-odd-mss-chain'] = net_ctl(egress=0, seg0=ETH + IP4 + TCP - 1 + 101, segn=1000) + \
        csum_hdr(L4_4, 6, GSO_TCPV4, 1001, 54) + f4
    seeds['gso-tcp4-headers-alone-in-first-mbuf'] = net_ctl(egress=0, seg0=53, segn=511) + \
        csum_hdr(L4_4, 6, GSO_TCPV4, 700, 54) + f4
    seeds['gso-tcp4-options'] = net_ctl(egress=0) + csum_hdr(ETH + 28, 6, GSO_TCPV4, 1000, 0) + \
        frame4(6, 4000, options=b'\x01\x01\x01\x00\x94\x04\x00\x00')
    seeds['gso-tcp4-min-mss-big'] = net_ctl(tx=TX_ALL | TX_FIXUP, egress=0, extra=60000) + \
        csum_hdr(L4_4, 6, GSO_TCPV4, 64, 54) + frame4(6, 200)
    seeds['gso-tcp6-big-jumbo-mss'] = net_ctl(tx=TX_ALL | TX_FIXUP, egress=0, extra=60000) + \
        csum_hdr(L4_6, 6, GSO_TCPV6, 8940, 74) + frame6(6, 200)
    seeds['gso-tcp4-tight-pools'] = net_ctl(egress=EG_TIGHT) + \
        csum_hdr(L4_4, 6, GSO_TCPV4, 100, 54) + frame4(6, 8000)
    seeds['gso-tcp6-tight-pools'] = net_ctl(egress=EG_TIGHT) + \
        csum_hdr(L4_6, 6, GSO_TCPV6, 100, 74) + frame6(6, 8000)
    seeds['gso-tcp4-small-out'] = net_ctl(egress=EG_SMALL_MAX, mx=2) + \
        csum_hdr(L4_4, 6, GSO_TCPV4, 1448, 54) + frame4(6, 8000)
    seeds['gso-tcp6-small-out'] = net_ctl(egress=EG_SMALL_MAX, mx=2) + \
        csum_hdr(L4_6, 6, GSO_TCPV6, 1448, 74) + frame6(6, 8000)
    seeds['gso-payload-not-above-gso-size'] = net_ctl(egress=0) + \
        csum_hdr(L4_4, 6, GSO_TCPV4, 1448, 54) + frame4(6, 1448)
    # VLAN and QinQ tags.
    vlan, qinq = ((0x8100, 100),), ((0x88a8, 10), (0x8100, 20))
    seeds['vlan-gso-tcp4'] = net_ctl(egress=0) + csum_hdr(ETH + 4 + IP4, 6, GSO_TCPV4, 1448, 58) + \
        frame4(6, 6000, vlan=vlan)
    seeds['vlan-gso-tcp6-guest'] = net_ctl(egress=EG_GUEST) + \
        csum_hdr(ETH + 4 + IP6, 6, GSO_TCPV6, 1448, 78) + frame6(6, 6000, vlan=vlan)
    seeds['qinq-udp4-csum'] = net_ctl(egress=0) + csum_hdr(ETH + 8 + IP4, 17) + \
        frame4(17, 500, vlan=qinq)
    seeds['vlan-tcp6-csum'] = net_ctl(egress=0) + csum_hdr(ETH + 4 + IP6, 6) + \
        frame6(6, 2500, vlan=vlan)
    # IPv6 extension headers (hop-by-hop options, 8 bytes).
    hbh = bytes([6, 0, 1, 4, 0, 0, 0, 0])
    seeds['ipv6-hbh-gso-tcp'] = net_ctl(egress=0) + csum_hdr(L4_6 + 8, 6, GSO_TCPV6, 1000, 0) + \
        frame6(6, 5000, ext=hbh, first=0)
    seeds['ipv6-hbh-tcp-csum'] = net_ctl(egress=0) + csum_hdr(L4_6 + 8, 6) + \
        frame6(6, 300, ext=hbh, first=0)
    # No offload at all.
    seeds['plain'] = net_ctl() + vnet_hdr() + frame4(6, 100)
    # Malformed (SECURITY.md 19): each must be dropped, nothing may leak.
    f4, f6 = frame4(6, 3000), frame6(6, 3000)
    bad = {
        'csum-start-beyond': vnet_hdr(NEEDS_CSUM, start=len(f4) + 10, off=0),
        'csum-field-past-end': vnet_hdr(NEEDS_CSUM, start=L4_4, off=len(f4) - L4_4 - 1),
        'csum-wrap': vnet_hdr(NEEDS_CSUM, start=0xff00, off=0x200),
        'hdr-len-beyond': csum_hdr(L4_4, 6, hdr_len=len(f4) + 1),
        'gso-without-needs-csum': vnet_hdr(0, GSO_TCPV4, 54, 1448, L4_4, 16),
        'gso-size-0': csum_hdr(L4_4, 6, GSO_TCPV4, 0, 54),
        'gso-size-1': csum_hdr(L4_4, 6, GSO_TCPV4, 1, 54),
        'gso-udp': csum_hdr(L4_4, 6, GSO_UDP, 1448, 54),
        'gso-ecn': csum_hdr(L4_4, 6, GSO_TCPV4 | GSO_ECN, 1448, 54),
        'gso-tcpv6-on-ipv4': csum_hdr(L4_4, 6, GSO_TCPV6, 1448, 54),
        'gso-csum-start-not-tcp': vnet_hdr(NEEDS_CSUM, GSO_TCPV4, 54, 1448, ETH, 16),
    }
    for name, h in bad.items():
        seeds['bad-' + name] = net_ctl(tx=TX_ALL | TX_ECN | TX_UFO) + h + f4
    seeds['bad-tso4-not-negotiated'] = net_ctl(tx=TX_CSUM | TX_TSO6) + \
        csum_hdr(L4_4, 6, GSO_TCPV4, 1448, 54) + f4
    seeds['bad-needs-csum-not-negotiated'] = net_ctl(tx=0) + csum_hdr(L4_4, 6) + f4
    seeds['bad-gso-tcpv4-on-ipv6'] = net_ctl() + csum_hdr(L4_6, 6, GSO_TCPV4, 1448, 74) + f6
    seeds['bad-gso-truncated-tcp'] = net_ctl() + csum_hdr(L4_4, 6, GSO_TCPV4, 100, 0) + \
        frame4(6, 0)[:-4]
    seeds['bad-gso-ipv4-fragment'] = net_ctl() + csum_hdr(L4_4, 6, GSO_TCPV4, 1448, 54) + \
        frame4(6, 3000, frag=0x2000)
    seeds['bad-gso-headers-split'] = net_ctl(seg0=40) + csum_hdr(L4_4, 6, GSO_TCPV4, 1448, 54) + f4
    # Lengths that disagree with the frame: dropped at an egress without offloads.
    short = bytearray(frame4(6, 100))
    short[ETH + 2:ETH + 4] = struct.pack('!H', 4000)
    seeds['bad-ipv4-total-length'] = net_ctl(egress=0) + csum_hdr(L4_4, 6) + bytes(short)
    return seeds


def write(kind, seeds):
    d = HERE / 'corpus' / kind
    d.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (d / (name + '.bin')).write_bytes(data)


if __name__ == '__main__':
    write('msg', msg_seeds())
    write('ring', ring_seeds())
    write('net_hdr', net_seeds())
