#!/usr/bin/env python3
"""Write the committed seed corpus (fuzz/seeds/<target>/): a few inputs per target, laid
out the way each target reads its input, so a short run starts from deep inside the
code (a valid store file, a whole early session, an EHLO reply) rather than from
nothing. Rerun after changing how a target reads its input."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MASK = (1 << 64) - 1


def out(target, name, data):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def u16(v):
    return struct.pack("<H", v)


def sl(b):  # Cursor::slice: a u16 length, then the bytes
    return u16(len(b)) + b


EHLO = (b"250-mx.example.org hello\r\n250-SIZE 1000000\r\n250-PIPELINING\r\n"
        b"250-PIPECONNECT\r\n250-CHUNKING\r\n250-AUTH PLAIN LOGIN\r\n250-LIMITS RCPTMAX=10\r\n"
        b"250 HELP\r\n")

# reply: default limits, no split lengths, then a stream; and with small limits.
out("reply", "ehlo", b"\x01" + sl(b"\x03\x07") + EHLO + b"354 go\r\n")
out("reply", "multi", b"\x01" + sl(b"") + b"220-a\r\n220 b\r\n421 4.3.0 bye\n")
out("reply", "limits", b"\x00\x10\x04\x00\x01" + sl(b"\x01") + b"250-x\r\n250 y\r\n")

# caps: parse an EHLO reply; decode a record.
out("caps", "ehlo", b"\x00" + EHLO)
out("caps", "legacy", b"\x02" + b"250-mx\r\n250-X_PIPE_CONNECT\r\n250 PIPELINING\r\n")
# A capability record, encoding version 2 (docs/FILE_STORE.md): version, presence bits
# (SIZE, MAILMAX, RCPTMAX; RCPTDOMAINMAX absent and 0), extension flags, SIZE, the three
# LIMITS, fingerprint, AUTH count and names.
rec = bytes([2, 0x7]) + struct.pack("<I", 7) + struct.pack("<Q", 1000) + struct.pack("<III", 1, 2, 0) \
    + struct.pack("<Q", 0x1234) + bytes([2]) + b"\x05PLAIN\x05LOGIN"
# A hold-down record, encoding version 1: step 2, no successes, began, ends.
hold = bytes([1, 0, 0, 0]) + struct.pack("<III", 2, 0, 0) + struct.pack("<QQ", 1700000000, 4000000000)
out("caps", "record", b"\x01" + rec)

# key: from text, narrowed; from canonical bytes.
out("key", "v4", b"\x06" + u16(25) + b"\x00" + sl(b"192.0.2.1") + sl(b"198.51.100.2") + b"Client.Example")
out("key", "v6", b"\x04" + u16(587) + b"\x01" + sl(b"[2001:db8::1]") + sl(b"::ffff:10.0.0.1"))
canon = bytes([1, 0]) + struct.pack(">H", 25) + bytes([4, 192, 0, 2, 1, 0, 3]) + b"a.b"
out("key", "bytes", b"\x01" + canon)


def session(a, b, rcpt, body, learn, ops):
    s = bytes([a, b]) + (b"\x00\x00\x01\x00" if a & 8 else b"") + bytes([rcpt]) + u16(body) + u16(learn)
    for op in ops:
        s += op
    return s


def reply(code, lens=b""):  # op 3: a canned code from the table by index
    codes = [220, 250, 251, 252, 354, 334, 235, 221, 421, 450, 451, 452, 454, 500, 501, 503,
             530, 535, 550, 552, 554, 200, 300, 599]
    return bytes([3, codes.index(code)]) + sl(lens)


def raw(b, lens=b""):
    return b"\x00" + sl(b) + sl(lens)


def ehlo(bits, lens=b""):
    return b"\x06" + u16(bits) + sl(lens)


# Bits of the target's extension list: PIPELINING 1, PIPECONNECT 2, CHUNKING 4, SIZE 8.
early = 0x1 | 0x2 | 0x4 | 0x8
# Early, BDAT: banner, EHLO, MAIL, RCPT, BDAT LAST.
out("session", "early_bdat", session(0x01, 0x00, 0, 100, early,
    [reply(220), ehlo(early), reply(250), reply(250), reply(250)]))
# Classic with DATA: banner, EHLO, MAIL, RCPT x2, DATA 354, body 250.
out("session", "classic_data", session(0x00, 0x80, 1, 100, 0x8000,
    [reply(220), ehlo(0x1), reply(250), reply(250), reply(250), reply(354), reply(250)]))
# STARTTLS, then the encrypted phase.
out("session", "starttls", session(0x01, 0x02, 0, 10, early | 0x10,
    [reply(220), ehlo(early | 0x10), reply(220), b"\x07", ehlo(early), reply(250), reply(250),
     reply(250)]))
# AUTH with a challenge, in one raw buffer split small.
out("session", "auth_raw", session(0x01, 0x0c, 0, 10, early | 0x20,
    [raw(b"220 hi\r\n", b"\x01\x02"), ehlo(early | 0x20), raw(b"334 \r\n235 ok\r\n250 ok\r\n"),
     reply(250), reply(250)]))
# An early flight refused: 554 to the banner.
out("session", "refused", session(0x01, 0x00, 1, 10, early, [reply(554), reply(503)]))


def checksum(words):
    h = (0x9e3779b97f4a7c15 ^ len(words)) & MASK
    for w in words:
        h = ((h ^ w) * 0xbf58476d1ce4e5b9) & MASK
        h ^= h >> 31
    h ^= h >> 33
    h = (h * 0xff51afd7ed558ccd) & MASK
    h ^= h >> 33
    return h


# store_open: a valid empty store of 1 set x 2 ways (format version 2), and a truncated one.
SLOT_SIZE = 768
sets, ways = 1, 2
size = 4096 + sets * (64 + ways * SLOT_SIZE)
hdr = b"PIPECSTO" + struct.pack("<IIIIIIII", 2, 4096, sets, ways, SLOT_SIZE, 64, 296, 371) \
    + struct.pack("<QQ", 1700000000, size)
words = [struct.unpack("<Q", hdr[i:i + 8])[0] for i in range(0, 56, 8)]
hdr += struct.pack("<Q", checksum(words))
store = hdr + bytes(size - len(hdr))
out("store_open", "empty_1x2", b"\x03" + store)
out("store_open", "truncated", b"\x03" + store[:3000])
out("store_open", "rebuild", b"\x07" + store[:100])
# The same file as format version 1 left it: refused (Version), rebuilt with mode bit 4.
v1 = bytearray(store)
v1[8:12] = struct.pack("<I", 1)
v1[36:40] = struct.pack("<I", 370)
v1[56:64] = struct.pack("<Q", checksum([struct.unpack("<Q", bytes(v1[i:i + 8]))[0] for i in range(0, 56, 8)]))
out("store_open", "format1", b"\x03" + bytes(v1))
out("store_open", "format1_rebuild", b"\x07" + bytes(v1))

# store_slot: 2 ways, the first a real key with a valid record, the second fuzzer bytes.
slot = bytes([1]) + sl(rec) + struct.pack("<QQ", 5, 1700000000)
other = bytes([0]) + sl(canon + rec) + u16(len(canon)) + struct.pack("<QQ", 1, 2)
out("store_slot", "record", b"\x01" + slot + other)
# A hold-down record for the real key (flags 0x81: kind hold-down, its tagged digest).
held = bytes([0x81]) + sl(hold) + struct.pack("<QQ", 5, 1700000000)
out("store_slot", "hold_down", b"\x01" + held + other)

# capi: a key, an EHLO reply learned, a session fed a whole early conversation.
capi = b"\x28" + sl(b"192.0.2.1") + u16(25) + sl(b"client.example.net") + u16(100)
capi += sl(EHLO) + struct.pack("<I", 0)
capi += struct.pack("<I", 1) + sl(b"plain")  # an extension bit, an AUTH name
capi += b"\x10"  # cache capacity
capi += b"\x01"  # rcpt count - 1
capi += struct.pack("<I", 0) + b"\x01" + struct.pack("<I", 300) + b"\x00" + b"\x01"
capi += struct.pack("<I", 0)
capi += b"\x03" + u16(600) + sl(b"\x05\x09\x02")
capi += b"220 hi\r\n" + EHLO + b"250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n"
out("capi", "early_session", capi)

# tracker: an entry in cleartext, a request, then the replies an MTA would pass.
CACHED = 0x8000 | 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x40  # PIPELINING PIPECONNECT STARTTLS SIZE 8BITMIME DSN


def tracker_seed(flags, replies, keywords=b"", mode=0):
    s = bytes([mode]) + u16(CACHED) + u16(0) + sl(keywords)
    s += bytes([flags, 0, 2]) + struct.pack("<I", 0x1A0) + u16(0) + struct.pack("<I", 1000)
    for kind, code_index, text in replies:
        s += bytes([kind, code_index])
        s += b"\x03" if text is None else b"\x01" + u16(CACHED)
    return s


TRANSACTION = [(0, 0, None), (1, 1, "ehlo"), (4, 1, None), (5, 1, None), (5, 10, None),
               (6, 3, None), (8, 1, None)]
out("tracker", "early_transaction", tracker_seed(1, TRANSACTION))
out("tracker", "early_starttls", tracker_seed(1 | 16, [(0, 0, None), (1, 1, "ehlo"), (2, 0, None)]))
out("tracker", "refused", tracker_seed(1, [(0, 11, None), (1, 1, "ehlo")]))
out("tracker", "ignored", tracker_seed(1, TRANSACTION, keywords=b"dsn, silent-discard", mode=64))
