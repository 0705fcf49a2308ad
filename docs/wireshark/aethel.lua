-- aethel-p2p wire protocol (version 1) dissector for Wireshark and tshark.
--
-- Splits each TCP stream on the 4-byte big-endian length prefix (docs/PROTOCOL.md §1),
-- decodes the MessagePack body (§2) and shows each message's type and fields (§4).
--
-- Load it for one run:
--   tshark -X lua_script:docs/wireshark/aethel.lua -r capture.pcap
-- or install it: copy to ~/.local/lib/wireshark/plugins/ (Wireshark 4.x).
-- Streams are recognised from their first HELLO; for a capture that starts mid-stream,
-- decode the port explicitly: -d tcp.port==7001,aethel (or set the aethel.port preference).
-- Display filters: aethel, aethel.type == 5, aethel.msg_id, aethel.topic == "chat",
-- aethel.src_id, aethel.dst_id (node ids, once each end's HELLO was seen), aethel.truncated.
-- A capture cut short (tcpdump -s 80) is dissected packet by packet: each frame shows what
-- was captured and is marked truncated, never an error.

local aethel = Proto("aethel", "aethel-p2p")

local TYPES = {
  [1] = "HELLO", [2] = "AUTH", [3] = "PING", [4] = "PONG", [5] = "GOSSIP", [6] = "IHAVE",
  [7] = "IWANT", [8] = "DIRECT", [9] = "ACK", [10] = "FIND_NODE", [11] = "NODES", [12] = "GOODBYE",
}
local GOODBYE = {
  [0] = "NORMAL", [1] = "PROTOCOL_ERROR", [2] = "VERSION_MISMATCH", [3] = "NETWORK_MISMATCH",
  [4] = "BAD_SIGNATURE", [5] = "HANDSHAKE_TIMEOUT", [6] = "SELF_CONNECTION",
  [7] = "DUPLICATE_CONNECTION", [8] = "TIMEOUT", [9] = "TOO_MANY_PEERS", [10] = "UNEXPECTED_MESSAGE", [11] = "IDLE",
}
-- Field names per type, after the type code, in wire order (§4).
local FIELDS = {
  [1] = { "version", "network_id", "public_key", "nonce", "listen_host", "listen_port" },
  [2] = { "signature" },
  [3] = { "seq" }, [4] = { "seq" },
  [5] = { "msg_id", "origin", "seq", "topic", "ttl", "hops", "seen_by", "payload", "signature" },
  [6] = { "ids" }, [7] = { "ids" },
  [8] = { "ref", "topic", "payload" },
  [9] = { "ref" },
  [10] = { "req_id", "target" },
  [11] = { "req_id", "contacts" },
  [12] = { "code", "reason" },
}

local f = {
  length = ProtoField.uint32("aethel.length", "Body length", base.DEC),
  type = ProtoField.uint8("aethel.type", "Type", base.DEC, TYPES),
  version = ProtoField.uint16("aethel.version", "Version"),
  network_id = ProtoField.string("aethel.network_id", "Network id"),
  public_key = ProtoField.bytes("aethel.public_key", "Public key"),
  nonce = ProtoField.bytes("aethel.nonce", "Nonce"),
  listen_host = ProtoField.string("aethel.listen_host", "Listen host"),
  listen_port = ProtoField.uint16("aethel.listen_port", "Listen port"),
  signature = ProtoField.bytes("aethel.signature", "Signature"),
  seq = ProtoField.uint64("aethel.seq", "Seq"),
  msg_id = ProtoField.bytes("aethel.msg_id", "Message id"),
  origin = ProtoField.bytes("aethel.origin", "Origin public key"),
  topic = ProtoField.string("aethel.topic", "Topic"),
  ttl = ProtoField.uint8("aethel.ttl", "TTL"),
  hops = ProtoField.uint8("aethel.hops", "Hops"),
  seen_by = ProtoField.bytes("aethel.seen_by", "Seen by (id prefix)"),
  payload = ProtoField.bytes("aethel.payload", "Payload (MessagePack)"),
  ids = ProtoField.bytes("aethel.ids", "Message id"),
  ref = ProtoField.bytes("aethel.ref", "Ref"),
  req_id = ProtoField.uint32("aethel.req_id", "Request id"),
  target = ProtoField.bytes("aethel.target", "Target id"),
  contacts = ProtoField.string("aethel.contact", "Contact"),
  code = ProtoField.uint16("aethel.goodbye_code", "GOODBYE code", base.DEC, GOODBYE),
  reason = ProtoField.string("aethel.reason", "Reason"),
  malformed = ProtoField.string("aethel.malformed", "Malformed"),
  truncated = ProtoField.string("aethel.truncated", "Truncated"),
  src_id = ProtoField.string("aethel.src_id", "Sender node id"),
  dst_id = ProtoField.string("aethel.dst_id", "Receiver node id"),
}
local field_list = {}
for _, v in pairs(f) do table.insert(field_list, v) end
aethel.fields = field_list

aethel.prefs.port = Pref.uint("TCP port", 0, "Decode this TCP port as aethel-p2p (0: only streams recognised by their HELLO)")

-- ---- Node ids: SHA-256 of the public key in each end's HELLO (PROTOCOL.md §3) ------------

local bits = bit or bit32
local band, bxor, bnot, rshift = bits.band, bits.bxor, bits.bnot, bits.rshift
local ror = bits.ror or bits.rrotate
local M32 = 4294967296
local function u32(x) return x % M32 end

-- FIPS 180-4 constants: fractional parts of the square roots (H0) and cube roots (K) of the
-- first primes, computed here rather than listed.
local SHA_H0, SHA_K = {}, {}
do
  local n, p = 0, 2
  while n < 64 do
    local prime = true
    for d = 2, math.floor(math.sqrt(p)) do if p % d == 0 then prime = false break end end
    if prime then
      n = n + 1
      if n <= 8 then SHA_H0[n] = math.floor((math.sqrt(p) % 1) * M32) end
      SHA_K[n] = math.floor((p ^ (1 / 3) % 1) * M32)
    end
    p = p + 1
  end
end

-- SHA-256 of a Lua string, as lowercase hex.
local function sha256_hex(msg)
  local len = #msg
  msg = msg .. "\128" .. string.rep("\0", (55 - len) % 64)
  local bitlen = len * 8
  for i = 7, 0, -1 do msg = msg .. string.char(math.floor(bitlen / 2 ^ (8 * i)) % 256) end
  local H = {}
  for i = 1, 8 do H[i] = SHA_H0[i] end
  local w = {}
  for chunk = 1, #msg, 64 do
    for i = 1, 16 do
      local b1, b2, b3, b4 = msg:byte(chunk + (i - 1) * 4, chunk + (i - 1) * 4 + 3)
      w[i] = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
    end
    for i = 17, 64 do
      local s0 = u32(bxor(ror(w[i - 15], 7), ror(w[i - 15], 18), rshift(w[i - 15], 3)))
      local s1 = u32(bxor(ror(w[i - 2], 17), ror(w[i - 2], 19), rshift(w[i - 2], 10)))
      w[i] = u32(w[i - 16] + s0 + w[i - 7] + s1)
    end
    local a, b, c, d, e, f_, g, h = H[1], H[2], H[3], H[4], H[5], H[6], H[7], H[8]
    for i = 1, 64 do
      local S1 = u32(bxor(ror(e, 6), ror(e, 11), ror(e, 25)))
      local ch = u32(bxor(band(e, f_), band(bnot(e), g)))
      local t1 = u32(h + S1 + ch + SHA_K[i] + w[i])
      local S0 = u32(bxor(ror(a, 2), ror(a, 13), ror(a, 22)))
      local maj = u32(bxor(band(a, b), band(a, c), band(b, c)))
      h, g, f_, e, d, c, b, a = g, f_, e, u32(d + t1), c, b, a, u32(t1 + S0 + maj)
    end
    H[1], H[2], H[3], H[4] = u32(H[1] + a), u32(H[2] + b), u32(H[3] + c), u32(H[4] + d)
    H[5], H[6], H[7], H[8] = u32(H[5] + e), u32(H[6] + f_), u32(H[7] + g), u32(H[8] + h)
  end
  local out = {}
  for i = 1, 8 do out[i] = string.format("%08x", H[i]) end
  return table.concat(out)
end

-- "address:port" of an end -> its node id, learned from the HELLO it sent.
local node_ids = {}
local function end_key(addr, port) return tostring(addr) .. ":" .. tostring(port) end

-- ---- MessagePack: just enough to walk one value and remember where each part lies --------

-- Returns { kind, value, range, items } and the offset after the value, or nil and an error.
local function mp_read(tvb, off, limit)
  if off >= limit then return nil, "truncated" end
  local b = tvb(off, 1):uint()
  local function need(n) return off + n <= limit end
  local function sized(kind, hdr, n)
    if not need(hdr + n) then return nil, "truncated" end
    local r = tvb(off, hdr + n)
    local v = n > 0 and tvb(off + hdr, n) or nil
    return { kind = kind, range = r, data = v }, off + hdr + n
  end
  local function array(hdr, n)
    local items, p = {}, off + hdr
    for i = 1, n do
      local item, nxt = mp_read(tvb, p, limit)
      if not item then return nil, nxt end
      items[i] = item
      p = nxt
    end
    return { kind = "array", items = items, range = tvb(off, p - off) }, p
  end
  if b <= 0x7f then return { kind = "int", value = b, range = tvb(off, 1) }, off + 1 end
  if b >= 0xe0 then return { kind = "int", value = b - 256, range = tvb(off, 1) }, off + 1 end
  if b >= 0xa0 and b <= 0xbf then return sized("str", 1, b - 0xa0) end
  if b >= 0x90 and b <= 0x9f then return array(1, b - 0x90) end
  if b >= 0x80 and b <= 0x8f then
    local t, p = array(1, 2 * (b - 0x80))
    if t then t.kind = "map" end
    return t, p
  end
  if b == 0xc0 then return { kind = "nil", range = tvb(off, 1) }, off + 1 end
  if b == 0xc2 or b == 0xc3 then return { kind = "bool", value = b == 0xc3, range = tvb(off, 1) }, off + 1 end
  local uint_sizes = { [0xcc] = 1, [0xcd] = 2, [0xce] = 4, [0xcf] = 8 }
  local int_sizes = { [0xd0] = 1, [0xd1] = 2, [0xd2] = 4, [0xd3] = 8 }
  if uint_sizes[b] or int_sizes[b] then
    local n = uint_sizes[b] or int_sizes[b]
    if not need(1 + n) then return nil, "truncated" end
    local r = tvb(off + 1, n)
    local v
    if n == 8 then v = uint_sizes[b] and r:uint64() or r:int64()
    elseif uint_sizes[b] then v = r:uint()
    else v = r:int() end
    return { kind = "int", value = v, range = tvb(off, 1 + n) }, off + 1 + n
  end
  if b == 0xca or b == 0xcb then
    local n = b == 0xca and 4 or 8
    if not need(1 + n) then return nil, "truncated" end
    return { kind = "float", value = tvb(off + 1, n):float(), range = tvb(off, 1 + n) }, off + 1 + n
  end
  local len_sizes = { [0xc4] = 1, [0xc5] = 2, [0xc6] = 4, [0xd9] = 1, [0xda] = 2, [0xdb] = 4,
                      [0xdc] = 2, [0xdd] = 4, [0xde] = 2, [0xdf] = 4, [0xc7] = 1, [0xc8] = 2, [0xc9] = 4 }
  local ls = len_sizes[b]
  if ls then
    if not need(1 + ls) then return nil, "truncated" end
    local n = tvb(off + 1, ls):uint()
    if b <= 0xc6 then return sized("bin", 1 + ls, n) end
    if b >= 0xd9 and b <= 0xdb then return sized("str", 1 + ls, n) end
    if b == 0xdc or b == 0xdd then return array(1 + ls, n) end
    if b == 0xde or b == 0xdf then
      local t, p = array(1 + ls, 2 * n)
      if t then t.kind = "map" end
      return t, p
    end
    return sized("ext", 2 + ls, n) -- ext 8/16/32: type byte after the length
  end
  local fixext = { [0xd4] = 1, [0xd5] = 2, [0xd6] = 4, [0xd7] = 8, [0xd8] = 16 }
  if fixext[b] then return sized("ext", 2, fixext[b]) end
  return nil, string.format("byte 0x%02x is not MessagePack", b)
end

local function text(v)
  if v.kind == "str" then return v.data and v.data:string(ENC_UTF_8) or "" end
  if v.kind == "int" or v.kind == "float" then return tostring(v.value) end
  if v.kind == "bin" then return v.data and tostring(v.data:bytes()) or "" end
  return v.kind
end

local function short_hex(v)
  if v.kind ~= "bin" or not v.data then return "?" end
  return string.lower(tostring(v.data:bytes())):sub(1, 8)
end

-- Add one decoded field to the tree, with the right ProtoField for its name.
local function add_field(tree, name, v)
  local pf = f[name]
  if name == "seen_by" or name == "ids" then
    local sub = tree:add(v.range, string.format("%s: %d entries", name, v.items and #v.items or 0))
    for _, item in ipairs(v.items or {}) do
      if item.data then sub:add(pf, item.data) end
    end
  elseif name == "contacts" then
    local sub = tree:add(v.range, string.format("contacts: %d", v.items and #v.items or 0))
    for _, c in ipairs(v.items or {}) do
      local parts = c.items or {}
      if #parts == 3 then
        sub:add(pf, c.range, string.format("%s… %s:%s", short_hex(parts[1]), text(parts[2]), text(parts[3])))
      end
    end
  elseif v.kind == "nil" then
    tree:add(v.range, name .. ": nil")
  elseif v.kind == "str" then
    if v.data then tree:add(pf, v.range, v.data:string(ENC_UTF_8)) else tree:add(pf, v.range, "") end
  elseif v.kind == "bin" then
    if v.data then tree:add(pf, v.data) else tree:add(v.range, name .. ": (empty)") end
  elseif v.kind == "int" then
    local value = v.value
    -- 64-bit fields take a UInt64; small integers arrive as Lua numbers.
    if pf == f.seq then
      if type(value) == "number" then value = UInt64.new(value % 4294967296, math.floor(value / 4294967296))
      else value = UInt64.fromhex(value:tohex()) end -- an int 64 (msgpack 0xd3) holding a positive seq
    end
    tree:add(pf, v.range, value)
  else
    tree:add(v.range, name .. ": " .. text(v))
  end
end

-- One line for the Info column: the type and its most telling fields.
local function summary(type_code, items)
  local name = TYPES[type_code] or ("type " .. type_code)
  local g = function(i) return items[i + 1] end
  if type_code == 5 and #items == 10 then
    return string.format("%s id=%s topic=%s ttl=%s hops=%s", name, short_hex(g(1)), text(g(4)), text(g(5)), text(g(6)))
  elseif (type_code == 3 or type_code == 4) and #items == 2 then
    return string.format("%s seq=%s", name, text(g(1)))
  elseif (type_code == 6 or type_code == 7) and #items == 2 then
    return string.format("%s %d id(s)", name, g(1).items and #g(1).items or 0)
  elseif type_code == 12 and #items == 3 then
    local code = g(1).value
    return string.format("%s %s (%s)", name, GOODBYE[code] or tostring(code), text(g(2)))
  elseif type_code == 1 and #items == 7 then
    return string.format("%s v%s network=%s listen=%s:%s", name, text(g(1)), text(g(2)), text(g(5)), text(g(6)))
  elseif (type_code == 8 or type_code == 9) and #items >= 2 then
    return string.format("%s ref=%s", name, short_hex(g(1)))
  elseif (type_code == 10 or type_code == 11) and #items == 3 then
    return string.format("%s req=%s", name, text(g(1)))
  end
  return name
end

-- One frame: `tvb` holds its 4-byte prefix and as much of its body as was captured.
local function dissect_frame(tvb, pinfo, tree)
  local len = tvb(0, 4):uint()
  local have = tvb:len() - 4
  local sub = tree:add(aethel, tvb(), "aethel-p2p")
  sub:add(f.length, tvb(0, 4))
  local src, dst = end_key(pinfo.src, pinfo.src_port), end_key(pinfo.dst, pinfo.dst_port)
  if node_ids[src] then sub:add(f.src_id, node_ids[src]) end
  if node_ids[dst] then sub:add(f.dst_id, node_ids[dst]) end
  local info
  if have < len then
    -- Cut short by the capture (snaplen): name the type if the captured start tells it.
    local type_code = (have >= 2 and tvb(4, 1):uint() >= 0x90 and tvb(4, 1):uint() <= 0x9f) and tvb(5, 1):uint() or nil
    if type_code and TYPES[type_code] then sub:add(f.type, tvb(5, 1), type_code) end
    local note = string.format("%d of %d body bytes captured", math.max(have, 0), len)
    sub:add(f.truncated, have > 0 and tvb(4, have) or tvb(0, 4), note)
    info = string.format("%s [TRUNCATED: %s]", type_code and TYPES[type_code] or "frame", note)
  else
    local v, nxt = mp_read(tvb, 4, 4 + len)
    if not v then
      sub:add(f.malformed, tvb(4, len), "invalid MessagePack: " .. nxt)
      info = "MALFORMED"
    elseif nxt ~= 4 + len then
      sub:add(f.malformed, tvb(4, len), "bytes after the MessagePack value")
      info = "MALFORMED"
    elseif v.kind ~= "array" or #v.items == 0 or v.items[1].kind ~= "int" then
      sub:add(f.malformed, tvb(4, len), "not an array starting with a type code")
      info = "MALFORMED"
    else
      local type_code = v.items[1].value
      sub:add(f.type, v.items[1].range, type_code)
      local names = FIELDS[type_code]
      if not names then
        info = "unknown type " .. tostring(type_code)
      else
        for i, name in ipairs(names) do
          local item = v.items[i + 1]
          if item then add_field(sub, name, item) end
        end
        if #v.items ~= #names + 1 then sub:add(f.malformed, v.range, "wrong number of fields") end
        info = summary(type_code, v.items)
        -- A HELLO names its sender: node id = SHA-256(public key).
        local key = v.items[4]
        if type_code == 1 and key and key.kind == "bin" and key.data and not node_ids[src] then
          node_ids[src] = sha256_hex(key.data:raw())
          sub:add(f.src_id, node_ids[src])
        end
      end
    end
  end
  if node_ids[src] then
    info = string.format("[%s → %s] %s", node_ids[src]:sub(1, 8), node_ids[dst] and node_ids[dst]:sub(1, 8) or "?", info)
  end
  sub:append_text(", " .. info)
  pinfo.cols.protocol = "AETHEL"
  local prev = tostring(pinfo.cols.info)
  if pinfo.private.aethel_seen == "1" then
    pinfo.cols.info:set(prev .. "; " .. info)
  else
    pinfo.cols.info:set(info)
    pinfo.private.aethel_seen = "1"
  end
  return 4 + len
end

local function frame_length(tvb, pinfo, offset)
  return tvb(offset, 4):uint() + 4
end

-- A packet the capture cut short: TCP cannot reassemble it, so walk the frames it starts
-- with as far as the captured bytes go, marking each one cut.
local function dissect_truncated(tvb, pinfo, tree)
  local off = 0
  local captured = tvb:len()
  while off + 4 <= captured do
    local len = tvb(off, 4):uint()
    if len > 64 * 1024 * 1024 then break end
    local take = math.min(4 + len, captured - off)
    dissect_frame(tvb(off, take):tvb(), pinfo, tree)
    off = off + 4 + len
  end
  if off < tvb:reported_len() then
    local rest = tree:add(aethel, tvb(), "aethel-p2p")
    rest:add(f.truncated, string.format("%d byte(s) of this segment not captured", tvb:reported_len() - math.max(off, captured)))
    pinfo.cols.protocol = "AETHEL"
    if pinfo.private.aethel_seen ~= "1" then pinfo.cols.info:set("[TRUNCATED: frame start not captured]") end
  end
end

function aethel.dissector(tvb, pinfo, tree)
  if tvb:len() == 0 then return 0 end
  pinfo.private.aethel_seen = "0"
  if tvb:len() < tvb:reported_len() then
    local ok, err = pcall(dissect_truncated, tvb, pinfo, tree)
    if not ok then tree:add(aethel, tvb(0, 0), "aethel-p2p"):add(f.truncated, "truncated capture: " .. tostring(err)) end
    return tvb:len()
  end
  dissect_tcp_pdus(tvb, tree, 4, frame_length, dissect_frame)
  return tvb:len()
end

-- A stream whose first bytes are a HELLO frame: length prefix, fixarray(7), type 1.
local function heuristic(tvb, pinfo, tree)
  if tvb:len() < 6 then return false end
  local len = tvb(0, 4):uint()
  if len < 6 or len > 4096 or tvb(4, 1):uint() ~= 0x97 or tvb(5, 1):uint() ~= 0x01 then return false end
  pinfo.conversation = aethel
  aethel.dissector(tvb, pinfo, tree)
  return true
end
aethel:register_heuristic("tcp", heuristic)

local registered_port = 0
function aethel.prefs_changed()
  local tcp = DissectorTable.get("tcp.port")
  if registered_port ~= 0 then tcp:remove(registered_port, aethel) end
  registered_port = aethel.prefs.port
  if registered_port ~= 0 then tcp:add(registered_port, aethel) end
end
DissectorTable.get("tcp.port"):add_for_decode_as(aethel)
