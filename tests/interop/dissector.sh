#!/bin/bash
# Dissector robustness test (TAP): malformed migration messages (made here, written as a pcap)
# read by tshark with dist/wireshark/ferry.lua: each is marked malformed with its reason, none
# stops the dissector with a Lua error, and a well-formed one beside them is not marked.
set -u
. "$(dirname "$0")/../lib/tap.sh"
dissector=$(cd "$(dirname "$0")/../.." && pwd)/dist/wireshark/ferry.lua
# Only this checkout's copy loads (not the one tools/setup.sh installed).
export FERRY_DISSECTOR=$dissector
dir=$(mktemp -d /tmp/ferry-dissector-XXXXXX)
trap 'rm -rf "$dir"' EXIT

python3 - "$dir/bad.pcap" <<'PY'
import struct, sys

def header(mtype, length, session=0x1122334455667788, seq=1, magic=0x46525259, version=6):
    return struct.pack(">IBBHQQ", magic, version, mtype, length, session, seq)

def pages(page, rnd, offset, data_len, data):
    return struct.pack(">QIHH", page, rnd, offset, data_len) + data

messages = [
    header(6, 16 + 100) + pages(7, 0, 0, 100, bytes(100)) + bytes(16),  # well formed
    header(6, 16 + 100)[:20],                                          # truncated header
    header(6, 500) + bytes(30),                                        # shorter than its length
    header(4, 9) + bytes(9),                                           # ACCEPT of 9 bytes
    header(6, 16 + 100) + pages(7, 0, 4090, 100, bytes(100)),          # fragment past its page
    header(6, 16 + 10) + pages(7, 0, 0, 100, bytes(10)),               # data_len lies
    header(99, 0),                                                     # unknown type
    header(14, 16 + 1) + struct.pack(">QII", 0, 4096, 0) + b"\x01",    # bitmap short of count
    header(19, 8 + 50) + struct.pack(">IHH", 1, 30, 40) + bytes(50),   # frame part past its frame
    header(8, 40) + bytes(40) + bytes(7),                              # trailing bytes, no tag
]

def frame(payload):
    udp = struct.pack(">HHHH", 49152, 8000, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     bytes([50, 50, 50, 1]), bytes([50, 50, 50, 2])) + udp
    return bytes(6) + bytes([2, 0, 0, 0, 0, 1]) + b"\x08\x00" + ip

with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    for i, m in enumerate(messages):
        data = frame(m)
        f.write(struct.pack("<IIII", i, 0, len(data), len(data)))
        f.write(data)
PY

tshark -2 -X "lua_script:$dissector" -r "$dir/bad.pcap" -T fields -e frame.number \
	-e ferry.type -e _ws.expert.message 2>"$dir/err" >"$dir/fields"
check "tshark reads every message" test "$(wc -l <"$dir/fields")" -eq 10
check "no Lua error stops the dissector" bash -c "! grep -qi 'lua' '$dir/fields' '$dir/err'"
check "the well-formed message is not marked" bash -c "awk -F'\t' '\$1 == 1' '$dir/fields' | grep -vq 'Malformed\|range\|length\|short\|trailing'"
marked() { awk -F'\t' -v n="$1" '$1 == n' "$dir/fields" | grep -q "$2"; }
check "a message shorter than its length is malformed" marked 3 "wrong length"
check "an ACCEPT of the wrong size is malformed" marked 4 "wrong length"
check "a fragment past its page is malformed" marked 5 "out of range"
check "a data length that lies is malformed" marked 6 "out of range"
check "an unknown type is malformed" marked 7 "unknown type"
check "a bitmap short of its count is malformed" marked 8 "shorter than its count"
check "a frame part past its frame is malformed" marked 9 "out of range"
check "bytes after the body that are not a tag are malformed" marked 10 "trailing"
sed 's/^/# /' "$dir/fields"
tap_finish
