-- Wireshark dissector for ferry's migration protocol (migrate/proto.h, version 7): UDP port
-- 8000, or any UDP datagram that starts with the magic "FRRY". Every message type and its
-- fields, the stream of a channel message, the round and page of page messages, the seal (its
-- AEAD tag, and whether the session encrypts) and page fragments reassembled into their page.
-- Install: copy to Wireshark's Lua plugin folder (tools/setup.sh does), or
-- tshark -X lua_script:dist/wireshark/ferry.lua.

-- Loaded once: Wireshark loads its plugin folder's copy (tools/setup.sh installs it) before a
-- -X lua_script: one, and a protocol can be registered only once. FERRY_DISSECTOR=<path> names
-- the one copy to load (the tests set it to their checkout's); every other stands aside.
local only = os.getenv("FERRY_DISSECTOR")
if only ~= nil and debug.getinfo(1, "S").source ~= "@" .. only then
	return
end
if ferry_dissector_loaded then
	return
end
ferry_dissector_loaded = true

local ferry = Proto("ferry", "ferry live migration")

local HEADER_LEN = 24
local TAG_LEN = 16
local PAGE_SIZE = 4096
local CONTROL_SEQ_BASE = UInt64(0, 0x80000000)

local types = {
	[1] = "HELLO", [2] = "CHALLENGE", [3] = "AUTH", [4] = "ACCEPT", [5] = "REFUSE",
	[6] = "PAGES", [7] = "ZERO_RUN", [8] = "ACK", [9] = "STATE", [10] = "CONFIRM",
	[11] = "CANCEL", [12] = "PROBE", [13] = "QUERY", [14] = "REGIONS", [15] = "ABSENT",
	[16] = "DEMAND", [17] = "COMPLETE", [18] = "NO_SESSION", [19] = "FRAME",
}
-- The fixed body of each type; PAGES, STATE, PROBE, REGIONS, ABSENT and FRAME carry data after.
local body_sizes = {
	[1] = 148, [2] = 52, [3] = 200, [4] = 8, [5] = 68, [6] = 16, [7] = 16, [8] = 40, [9] = 32,
	[10] = 56, [11] = 0, [12] = 0, [13] = 0, [14] = 16, [15] = 16, [16] = 16, [17] = 16,
	[18] = 48, [19] = 8,
}
local carries_data = { [6] = true, [9] = true, [12] = true, [14] = true, [15] = true, [19] = true }
-- HELLO, CHALLENGE and AUTH are the handshake (proofs, no keys yet); NO_SESSION carries its own
-- MAC; every other message is sealed with the session's AEAD, its tag after the body.
local unsealed = { [1] = true, [2] = true, [3] = true, [18] = true }
local refusals = {
	[1] = "version", [2] = "authentication", [3] = "duplicate name", [4] = "duplicate MAC",
	[5] = "no such port group", [6] = "no memory", [7] = "busy", [8] = "state before pages",
	[9] = "state does not load", [10] = "memory hash differs", [11] = "cancelled",
	[12] = "encryption policies disagree", [13] = "aborted", [14] = "no such datastore",
	[15] = "disk lock not offered",
}
local ciphers = { [1] = "ChaCha20-Poly1305", [2] = "AES-256-GCM" }
local encryptions = { [0] = "required", [1] = "opportunistic", [2] = "disabled" }

local f = ferry.fields
f.magic = ProtoField.uint32("ferry.magic", "Magic", base.HEX)
f.version = ProtoField.uint8("ferry.version", "Version")
f.type = ProtoField.uint8("ferry.type", "Type", base.DEC, types)
f.length = ProtoField.uint16("ferry.length", "Body length")
f.session = ProtoField.uint64("ferry.session", "Session", base.HEX)
f.seq = ProtoField.uint64("ferry.seq", "Sequence")
f.stream = ProtoField.uint8("ferry.stream", "Stream")
f.control = ProtoField.bool("ferry.control", "Control message")
f.nonce = ProtoField.bytes("ferry.nonce", "Nonce")
f.vm_name = ProtoField.string("ferry.vm_name", "VM name")
f.portgroup = ProtoField.string("ferry.portgroup", "Port group")
f.mac = ProtoField.ether("ferry.mac", "VM MAC")
f.prefix_len = ProtoField.uint8("ferry.prefix_len", "Prefix length")
f.flags = ProtoField.uint8("ferry.hello_flags", "Flags", base.HEX)
f.check_only = ProtoField.bool("ferry.check_only", "Pre-flight check only", 8, nil, 1)
f.hugepages = ProtoField.bool("ferry.hugepages", "Hugepage-backed", 8, nil, 2)
f.no_postcopy = ProtoField.bool("ferry.no_postcopy", "Post-copy forbidden", 8, nil, 4)
f.kvm = ProtoField.bool("ferry.kvm", "KVM VM (ferry's guest)", 8, nil, 8)
f.ip = ProtoField.ipv4("ferry.ip", "VM address")
f.memory_pages = ProtoField.uint64("ferry.memory_pages", "Memory pages")
f.announce_rounds = ProtoField.uint16("ferry.announce_rounds", "Announce rounds")
f.announce_initial = ProtoField.uint16("ferry.announce_initial_ms", "Announce initial (ms)")
f.announce_step = ProtoField.uint16("ferry.announce_step_ms", "Announce step (ms)")
f.announce_garp = ProtoField.uint8("ferry.announce_garp", "Announce with GARP")
f.encryption = ProtoField.uint8("ferry.encryption", "Encryption policy", base.DEC, encryptions)
f.ciphers = ProtoField.uint8("ferry.ciphers", "Ciphers offered", base.HEX)
f.cipher = ProtoField.uint8("ferry.cipher", "Cipher", base.DEC, ciphers)
f.streams = ProtoField.uint8("ferry.streams", "Streams")
f.encrypt = ProtoField.uint8("ferry.encrypt", "Encrypts", base.DEC, { [0] = "no", [1] = "yes" })
f.proof = ProtoField.bytes("ferry.proof", "Proof (HMAC-SHA256)")
f.mtu = ProtoField.uint16("ferry.mtu", "Destination MTU")
f.free_memory = ProtoField.uint32("ferry.free_memory_mb", "Free memory (MiB)")
f.reason = ProtoField.uint32("ferry.reason", "Reason", base.DEC, refusals)
f.text = ProtoField.string("ferry.text", "Text")
f.page = ProtoField.uint64("ferry.page", "Page")
f.round = ProtoField.uint32("ferry.round", "Round")
f.offset = ProtoField.uint16("ferry.offset", "Offset")
f.data_len = ProtoField.uint16("ferry.data_len", "Data length")
f.count = ProtoField.uint32("ferry.count", "Count")
f.cumulative = ProtoField.uint64("ferry.cumulative", "Cumulative")
f.sack = ProtoField.uint64("ferry.sack", "Selective acknowledgement", base.HEX)
f.memory_hash = ProtoField.uint64("ferry.memory_hash", "Memory hash", base.HEX)
f.final_round = ProtoField.uint32("ferry.final_round", "Final round")
f.verify = ProtoField.uint8("ferry.verify", "Verify")
f.running = ProtoField.uint8("ferry.running", "Running")
f.postcopy = ProtoField.uint8("ferry.postcopy", "Post-copy")
f.frames = ProtoField.uint32("ferry.frames", "Frames held")
f.disk_handoff = ProtoField.uint64("ferry.disk_handoff", "Disk lock handoff token", base.HEX)
f.datastore = ProtoField.string("ferry.datastore", "Datastore")
f.disk_mib = ProtoField.uint32("ferry.disk_mib", "Disk (MiB)")
f.resumed_ns = ProtoField.uint64("ferry.resumed_ns", "Resumed at (ns)")
f.pages = ProtoField.uint64("ferry.pages", "Pages held")
f.state_hash = ProtoField.bytes("ferry.state_hash", "State hash (SHA-256)")
f.first = ProtoField.uint64("ferry.first", "First")
f.query_seq = ProtoField.uint64("ferry.query_seq", "Query sequence")
f.uptime_ms = ProtoField.uint64("ferry.uptime_ms", "Uptime (ms)")
f.number = ProtoField.uint32("ferry.frame_number", "Frame number")
f.frame_len = ProtoField.uint16("ferry.frame_len", "Frame length")
f.reserved = ProtoField.bytes("ferry.reserved", "Reserved")
f.data = ProtoField.bytes("ferry.data", "Data")
f.encrypted = ProtoField.bool("ferry.encrypted", "Data encrypted")
f.tag = ProtoField.bytes("ferry.tag", "Seal tag (AEAD)")
f.sealed = ProtoField.bool("ferry.sealed", "Sealed")
f.fragment = ProtoField.bool("ferry.fragment", "Page fragment")
f.reassembled_in = ProtoField.framenum("ferry.reassembled_in", "Page reassembled in")
f.fragment_of = ProtoField.framenum("ferry.fragment_frame", "Fragment in frame")
f.reassembled_len = ProtoField.uint32("ferry.reassembled_length", "Reassembled page length")

-- The fixed fields of each type that has no more to them than their place: {field, bytes}, in
-- order (HELLO, CHALLENGE and AUTH nest structures and are laid out by hello() and terms()).
local layouts = {
	[4] = { { f.mtu, 2 }, { f.reserved, 2 }, { f.free_memory, 4 } },
	[5] = { { f.reason, 4 }, { f.text, 64 } },
	[6] = { { f.page, 8 }, { f.round, 4 }, { f.offset, 2 }, { f.data_len, 2 } },
	[7] = { { f.first, 8 }, { f.count, 4 }, { f.round, 4 } },
	[8] = { { f.cumulative, 8 }, { f.sack, 8 }, { f.sack, 8 }, { f.sack, 8 }, { f.sack, 8 } },
	[9] = { { f.memory_hash, 8 }, { f.final_round, 4 }, { f.verify, 1 }, { f.running, 1 },
		{ f.postcopy, 1 }, { f.reserved, 1 }, { f.frames, 4 }, { f.reserved, 4 },
		{ f.disk_handoff, 8 } },
	[10] = { { f.memory_hash, 8 }, { f.resumed_ns, 8 }, { f.pages, 8 }, { f.state_hash, 32 } },
	[14] = { { f.first, 8 }, { f.count, 4 }, { f.reserved, 4 } },
	[15] = { { f.first, 8 }, { f.count, 4 }, { f.reserved, 4 } },
	[16] = { { f.page, 8 }, { f.count, 4 }, { f.reserved, 4 } },
	[17] = { { f.pages, 8 }, { f.memory_hash, 8 } },
	[18] = { { f.query_seq, 8 }, { f.uptime_ms, 8 }, { f.proof, 32 } },
	[19] = { { f.number, 4 }, { f.offset, 2 }, { f.frame_len, 2 } },
}

local ef_malformed = ProtoExpert.new("ferry.malformed", "Malformed ferry message",
	expert.group.MALFORMED, expert.severity.ERROR)
ferry.experts = { ef_malformed }

-- What the handshake said of each session (whether it encrypts), and the fragments of each page
-- copy (session, page, round) seen on the first pass.
local sessions = {}
local fragments = {}
local completed_in = {} -- frame number -> the fragment set it completed

function ferry.init()
	sessions = {}
	fragments = {}
	completed_in = {}
end

local function add(tree, field, buf, off, len)
	return tree:add(field, buf(off, len))
end

local function add_layout(tree, buf, off, layout)
	for _, item in ipairs(layout or {}) do
		add(tree, item[1], buf, off, item[2])
		off = off + item[2]
	end
end

local function terms(tree, buf, off, session)
	add(tree, f.nonce, buf, off, 16)
	add(tree, f.cipher, buf, off + 16, 1)
	add(tree, f.encrypt, buf, off + 17, 1)
	add(tree, f.reserved, buf, off + 18, 2)
	sessions[session] = { encrypt = buf(off + 17, 1):uint() == 1 }
end

local function hello(tree, buf, off, nested)
	local t = nested and tree:add(ferry, buf(off, 148), "HELLO") or tree
	add(t, f.nonce, buf, off, 16)
	add(t, f.vm_name, buf, off + 16, 32)
	add(t, f.portgroup, buf, off + 48, 32)
	add(t, f.mac, buf, off + 80, 6)
	add(t, f.prefix_len, buf, off + 86, 1)
	local flags = add(t, f.flags, buf, off + 87, 1)
	flags:add(f.check_only, buf(off + 87, 1))
	flags:add(f.hugepages, buf(off + 87, 1))
	flags:add(f.no_postcopy, buf(off + 87, 1))
	flags:add(f.kvm, buf(off + 87, 1))
	add(t, f.ip, buf, off + 88, 4)
	add(t, f.memory_pages, buf, off + 92, 8)
	add(t, f.announce_rounds, buf, off + 100, 2)
	add(t, f.announce_initial, buf, off + 102, 2)
	add(t, f.announce_step, buf, off + 104, 2)
	add(t, f.announce_garp, buf, off + 106, 1)
	add(t, f.encryption, buf, off + 107, 1)
	add(t, f.ciphers, buf, off + 108, 1)
	add(t, f.cipher, buf, off + 109, 1)
	add(t, f.streams, buf, off + 110, 1)
	add(t, f.reserved, buf, off + 111, 1)
	add(t, f.datastore, buf, off + 112, 32)
	add(t, f.disk_mib, buf, off + 144, 4)
	return buf(off + 16, 32):stringz()
end

-- A page fragment: noted on the first pass; the frame that completes the page shows it whole.
local function page_fragment(tree, buf, pinfo, key, offset, data_off, data_len)
	local set = fragments[key]
	if not pinfo.visited then
		if set == nil or set.done then
			set = { parts = {}, got = 0, frames = {}, done = false }
			fragments[key] = set
		end
		if set.parts[offset] == nil then
			set.parts[offset] = buf(data_off, data_len):bytes()
			set.got = set.got + data_len
			table.insert(set.frames, pinfo.number)
			if set.got >= PAGE_SIZE then
				set.done = true
				set.completed = pinfo.number
				completed_in[pinfo.number] = set
			end
		end
	end
	local mark = tree:add(f.fragment, true)
	mark:set_generated()
	local whole = completed_in[pinfo.number]
	if whole ~= nil then
		local bytes = ByteArray.new()
		local offsets = {}
		for o in pairs(whole.parts) do table.insert(offsets, o) end
		table.sort(offsets)
		for _, o in ipairs(offsets) do bytes:append(whole.parts[o]) end
		local page = bytes:tvb("Reassembled page")
		local r = tree:add(f.reassembled_len, page(), page:len())
		r:set_generated()
		for _, n in ipairs(whole.frames) do
			local item = r:add(f.fragment_of, n)
			item:set_generated()
		end
		return true
	end
	if set ~= nil and set.completed ~= nil then
		local item = tree:add(f.reassembled_in, set.completed)
		item:set_generated()
	end
	return false
end

local function dissect(buf, pinfo, root)
	local len = buf:len()
	if len < HEADER_LEN or buf(0, 4):uint() ~= 0x46525259 then
		return 0
	end
	pinfo.cols.protocol = "FERRY"
	local tree = root:add(ferry, buf(), "ferry migration")
	local mtype = buf(5, 1):uint()
	local body_len = buf(6, 2):uint()
	local session = buf(8, 8):uint64()
	local seq = buf(16, 8):uint64()
	local h = tree:add(ferry, buf(0, HEADER_LEN), "Header")
	add(h, f.magic, buf, 0, 4)
	add(h, f.version, buf, 4, 1)
	add(h, f.type, buf, 5, 1)
	add(h, f.length, buf, 6, 2)
	add(h, f.session, buf, 8, 8)
	add(h, f.seq, buf, 16, 8)
	local control = seq >= CONTROL_SEQ_BASE
	local c = h:add(f.control, control)
	c:set_generated()
	if not control and seq > UInt64(0) then
		local s = h:add(f.stream, (seq:rshift(56)):tonumber())
		s:set_generated()
	end
	local name = types[mtype] or string.format("type %d", mtype)
	local skey = tostring(session)
	local info = string.format("%s session %s", name, session:tohex():sub(9))
	local fixed = body_sizes[mtype]
	if fixed == nil then
		tree:add_proto_expert_info(ef_malformed, "unknown type")
		pinfo.cols.info = info .. " [malformed]"
		return len
	end
	if len < HEADER_LEN + body_len or body_len < fixed or
		(not carries_data[mtype] and body_len ~= fixed) then
		tree:add_proto_expert_info(ef_malformed, "wrong length for its type")
		pinfo.cols.info = info .. " [malformed]"
		return len
	end
	local off = HEADER_LEN
	local data_off, data_len = off + fixed, body_len - fixed
	local b = tree:add(ferry, buf(off, body_len > 0 and body_len or 0), name)
	add_layout(b, buf, off, layouts[mtype])
	if mtype == 1 then
		info = info .. " vm " .. hello(b, buf, off, false)
	elseif mtype == 2 then
		terms(b, buf, off, skey)
		add(b, f.proof, buf, off + 20, 32)
	elseif mtype == 3 then
		info = info .. " vm " .. hello(b, buf, off, true)
		terms(b, buf, off + 148, skey)
		add(b, f.proof, buf, off + 168, 32)
	elseif mtype == 5 then
		info = info .. ": " .. (refusals[buf(off, 4):uint()] or "?")
	elseif mtype == 6 then
		local page, round = buf(off, 8):uint64(), buf(off + 8, 4):uint()
		local offset, dlen = buf(off + 12, 2):uint(), buf(off + 14, 2):uint()
		info = string.format("%s page %s round %d", info, tostring(page), round)
		if dlen ~= data_len or dlen == 0 or
			(offset + dlen > PAGE_SIZE and (offset ~= 0 or dlen % PAGE_SIZE ~= 0 or dlen > 2 * PAGE_SIZE)) then
			b:add_proto_expert_info(ef_malformed, "page data out of range")
			pinfo.cols.info = info .. " [malformed]"
			return len
		end
		if dlen < PAGE_SIZE then
			info = string.format("%s [%d-%d/%d]", info, offset, offset + dlen, PAGE_SIZE)
			-- A page's fragments may travel in different streams: the key has none.
			local key = table.concat({ skey, tostring(page), round }, ":")
			if page_fragment(b, buf, pinfo, key, offset, data_off, dlen) then
				info = info .. " [page reassembled]"
			end
		elseif dlen > PAGE_SIZE then
			info = string.format("%s +%d pages", info, dlen / PAGE_SIZE - 1)
		end
	elseif mtype == 7 then
		info = string.format("%s pages %s+%d round %d", info, tostring(buf(off, 8):uint64()),
			buf(off + 8, 4):uint(), buf(off + 12, 4):uint())
	elseif mtype == 8 then
		info = info .. " up to " .. tostring(buf(off, 8):uint64())
	elseif mtype == 9 then
		info = string.format("%s final round %d", info, buf(off + 8, 4):uint())
	elseif mtype == 14 or mtype == 15 then
		if data_len * 8 < buf(off + 8, 4):uint() then
			b:add_proto_expert_info(ef_malformed, "bitmap shorter than its count")
		end
	elseif mtype == 16 then
		info = string.format("%s page %s+%d", info, tostring(buf(off, 8):uint64()), buf(off + 8, 4):uint())
	elseif mtype == 19 then
		if buf(off + 4, 2):uint() + data_len > buf(off + 6, 2):uint() then
			b:add_proto_expert_info(ef_malformed, "frame part out of range")
		end
	end
	local s = sessions[skey]
	if data_len > 0 then
		local d = b:add(f.data, buf(data_off, data_len))
		if not unsealed[mtype] and s ~= nil then
			local e = d:add(f.encrypted, s.encrypt)
			e:set_generated()
		end
	end
	local rest = len - HEADER_LEN - body_len
	if not unsealed[mtype] then
		local sealed = tree:add(f.sealed, rest >= TAG_LEN)
		sealed:set_generated()
		if rest >= TAG_LEN then
			add(tree, f.tag, buf, HEADER_LEN + body_len, TAG_LEN)
		end
		if rest ~= 0 and rest ~= TAG_LEN then
			tree:add_proto_expert_info(ef_malformed, "trailing bytes")
		end
	elseif rest ~= 0 then
		tree:add_proto_expert_info(ef_malformed, "trailing bytes")
	end
	-- Channel messages by stream and number, control messages by their own count.
	if control then
		info = info .. " control #" .. tostring(seq - CONTROL_SEQ_BASE)
	elseif seq > UInt64(0) then
		info = string.format("%s stream %d #%s", info, seq:rshift(56):tonumber(),
			tostring(seq:band(UInt64(0xffffffff, 0x00ffffff))))
	end
	pinfo.cols.info = info
	return len
end

function ferry.dissector(buf, pinfo, root)
	return dissect(buf, pinfo, root)
end

local function heuristic(buf, pinfo, root)
	if buf:len() < HEADER_LEN or buf(0, 4):uint() ~= 0x46525259 then
		return false
	end
	dissect(buf, pinfo, root)
	return true
end

DissectorTable.get("udp.port"):add(8000, ferry)
ferry:register_heuristic("udp", heuristic)
