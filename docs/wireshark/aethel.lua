-- aethel-p2p wire protocol (version 2) dissector for Wireshark and tshark.
--
-- A connection starts with three HANDSHAKE frames in clear (docs/PROTOCOL.md §4.1: Noise XX,
-- one Noise message per frame): each is a 4-byte big-endian length prefix (§1) and a
-- MessagePack body (§2). The first shows the initiator's ephemeral key and its init payload
-- (versions, network id, encrypted); the second and third are encrypted Noise messages. On an
-- encrypted session (the default) each direction then carries records (§4.2): a 2-byte length
-- and ChaCha20-Poly1305 ciphertext, shown as "encrypted record (N bytes)". A plaintext
-- session (encryption: false on both nodes) carries frames after the handshake, shown with
-- their type and fields (§4).
--
-- Node ids travel encrypted inside the handshake, so this dissector does not show them (v1
-- named ends from their HELLO; v2 has none), nor any message inside records. To read an
-- encrypted capture, decrypt it with the key log the nodes wrote (--keylog FILE):
--   aethel-p2p dump --pcap capture.pcap --keylog FILE --write-pcap decrypted.pcap
-- writes a capture of the frames as the nodes read them (message 1 marked PLAINTEXT) that
-- this dissector reads in full; `aethel-p2p dump --pcap capture.pcap --keylog FILE` itself
-- names both ends by node id and decodes every frame (docs/DEBUGGING.md).
--
-- Load it for one run:
--   tshark -X lua_script:docs/wireshark/aethel.lua -r capture.pcap
-- or install it: copy to ~/.local/lib/wireshark/plugins/ (Wireshark 4.x).
-- Streams are recognised from their first HANDSHAKE; for a capture that starts mid-stream,
-- decode the port explicitly: -d tcp.port==7001,aethel (or set the aethel.port preference):
-- without the handshake it cannot tell records from frames and reads frames.
-- Display filters: aethel, aethel.type == 5, aethel.record, aethel.ephemeral, aethel.msg_id,
-- aethel.topic == "chat", aethel.truncated.
-- A capture cut short (tcpdump -s 80) is dissected packet by packet: each frame or record
-- shows what was captured and is marked truncated, never an error.

local aethel = Proto("aethel", "aethel-p2p")

local TYPES = {
  [1] = "HANDSHAKE", [3] = "PING", [4] = "PONG", [5] = "GOSSIP", [6] = "IHAVE",
  [7] = "IWANT", [8] = "DIRECT", [9] = "ACK", [10] = "FIND_NODE", [11] = "NODES", [12] = "GOODBYE",
}
local GOODBYE = {
  [0] = "NORMAL", [1] = "PROTOCOL_ERROR", [2] = "VERSION_MISMATCH", [3] = "NETWORK_MISMATCH",
  [4] = "BAD_SIGNATURE", [5] = "HANDSHAKE_TIMEOUT", [6] = "SELF_CONNECTION",
  [7] = "DUPLICATE_CONNECTION", [8] = "TIMEOUT", [9] = "TOO_MANY_PEERS", [10] = "UNEXPECTED_MESSAGE", [11] = "IDLE",
  [12] = "ENCRYPTION_MISMATCH", [13] = "BAD_RECORD",
}
-- Field names per type, after the type code, in wire order (§4).
local FIELDS = {
  [1] = { "noise" },
  [3] = { "seq" }, [4] = { "seq" },
  [5] = { "msg_id", "ttl", "hops", "seen_by", "origin", "seq", "topic", "payload", "signature" },
  [6] = { "ids" }, [7] = { "ids" },
  [8] = { "ref", "topic", "payload", "want_reply" },
  [9] = { "ref", "status", "reply" },
  [10] = { "req_id", "target" },
  [11] = { "req_id", "contacts" },
  [12] = { "code", "reason" },
}

local f = {
  length = ProtoField.uint32("aethel.length", "Body length", base.DEC),
  type = ProtoField.uint8("aethel.type", "Type", base.DEC, TYPES),
  noise = ProtoField.bytes("aethel.noise", "Noise message"),
  ephemeral = ProtoField.bytes("aethel.ephemeral", "Initiator ephemeral key"),
  min_version = ProtoField.uint16("aethel.min_version", "Min version"),
  max_version = ProtoField.uint16("aethel.max_version", "Max version"),
  network_id = ProtoField.string("aethel.network_id", "Network id"),
  encrypted = ProtoField.bool("aethel.encrypted", "Encrypted session"),
  record = ProtoField.uint16("aethel.record", "Encrypted record length"),
  want_reply = ProtoField.bool("aethel.want_reply", "Wants a reply"),
  status = ProtoField.uint8("aethel.status", "ACK status"),
  reply = ProtoField.bytes("aethel.reply", "Reply"),
  signature = ProtoField.bytes("aethel.signature", "Signature"),
  seq = ProtoField.uint64("aethel.seq", "Seq"),
  msg_id = ProtoField.bytes("aethel.msg_id", "Message id"),
  origin = ProtoField.bytes("aethel.origin", "Origin public key"),
  topic = ProtoField.string("aethel.topic", "Topic"),
  ttl = ProtoField.uint8("aethel.ttl", "TTL"),
  hops = ProtoField.uint8("aethel.hops", "Hops"),
  seen_by = ProtoField.bytes("aethel.seen_by", "Seen by (id prefixes, 8 bytes each)"),
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
}
local field_list = {}
for _, v in pairs(f) do table.insert(field_list, v) end
aethel.fields = field_list

aethel.prefs.port = Pref.uint("TCP port", 0, "Decode this TCP port as aethel-p2p (0: only streams recognised by their first HANDSHAKE)")

-- ---- Session state: where each direction's records begin -------------------------------
--
-- Per connection (keyed by its two ends): which end sent Noise message 1 and whether the
-- session is encrypted. Per direction: HANDSHAKE frames seen, and from which packet and
-- offset on it carries records (the initiator after its 2nd HANDSHAKE, the responder after
-- its 1st). Keyed by packet number so that a second pass (a click in the GUI) reads the same.

local conns = {}
local dirs = {}
local function end_key(addr, port) return tostring(addr) .. ":" .. tostring(port) end
local function dir_key(pinfo) return end_key(pinfo.src, pinfo.src_port) .. ">" .. end_key(pinfo.dst, pinfo.dst_port) end
local function conn_key(pinfo)
  local a, b = end_key(pinfo.src, pinfo.src_port), end_key(pinfo.dst, pinfo.dst_port)
  if a < b then return a .. "|" .. b end
  return b .. "|" .. a
end

-- True when the bytes at `offset` of this packet are records.
local function in_records(pinfo, offset)
  local d = dirs[dir_key(pinfo)]
  if not d or not d.rec_pkt then return false end
  return pinfo.number > d.rec_pkt or (pinfo.number == d.rec_pkt and offset >= d.rec_off)
end

-- A complete HANDSHAKE frame ending at `frame_end` of this packet was dissected: message 1
-- (with its init payload) fixes the roles; the last clear one switches its direction to records.
local function saw_handshake(pinfo, frame_end, init)
  local ck, dk = conn_key(pinfo), dir_key(pinfo)
  local c = conns[ck]
  if not c then
    -- In time order the first HANDSHAKE of a connection is message 1, from the initiator. Its
    -- init payload says whether records follow; a capture that cut it is taken as encrypted.
    c = { initiator = dk, encrypted = not init or init.encrypted }
    conns[ck] = c
  end
  local d = dirs[dk]
  if not d then
    d = { hs = 0 }
    dirs[dk] = d
  end
  if d.rec_pkt or (d.last_pkt and (pinfo.number < d.last_pkt or (pinfo.number == d.last_pkt and frame_end <= d.last_off))) then return end
  d.last_pkt, d.last_off = pinfo.number, frame_end
  d.hs = d.hs + 1
  local clear = (c.initiator == dk) and 2 or 1
  if c.encrypted and d.hs >= clear then d.rec_pkt, d.rec_off = pinfo.number, frame_end end
end

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
  if name == "seen_by" and v.kind == "bin" then
    local n = v.data and math.floor(v.data:len() / 8) or 0
    local sub = tree:add(v.range, string.format("seen_by: %d prefix(es)", n))
    for i = 0, n - 1 do sub:add(pf, v.data(i * 8, 8)) end
  elseif name == "ids" then
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
    if pf == f.seq and type(value) == "number" and value >= 4294967296 then
      value = UInt64.new(value % 4294967296, math.floor(value / 4294967296))
    elseif pf == f.seq then
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
    return string.format("%s id=%s topic=%s ttl=%s hops=%s", name, short_hex(g(1)), text(g(7)), text(g(2)), text(g(3)))
  elseif (type_code == 3 or type_code == 4) and #items == 2 then
    return string.format("%s seq=%s", name, text(g(1)))
  elseif (type_code == 6 or type_code == 7) and #items == 2 then
    return string.format("%s %d id(s)", name, g(1).items and #g(1).items or 0)
  elseif type_code == 12 and #items == 3 then
    local code = g(1).value
    return string.format("%s %s (%s)", name, GOODBYE[code] or tostring(code), text(g(2)))
  elseif (type_code == 8 or type_code == 9) and #items >= 2 then
    return string.format("%s ref=%s", name, short_hex(g(1)))
  elseif (type_code == 10 or type_code == 11) and #items == 3 then
    return string.format("%s req=%s", name, text(g(1)))
  end
  return name
end

-- Show one line in the Info column (several PDUs in one packet are joined with "; ").
local function set_info(pinfo, info)
  pinfo.cols.protocol = "AETHEL"
  local prev = tostring(pinfo.cols.info)
  if pinfo.private.aethel_seen == "1" then
    pinfo.cols.info:set(prev .. "; " .. info)
  else
    pinfo.cols.info:set(info)
    pinfo.private.aethel_seen = "1"
  end
end

-- The init payload of Noise message 1, in clear after the 32-byte ephemeral key:
-- [minVersion, maxVersion, networkId, encrypted], or nil when these bytes are not one.
local function init_payload(tvb, off, limit)
  local v, nxt = mp_read(tvb, off, limit)
  if not v or nxt ~= limit or v.kind ~= "array" or #v.items ~= 4 then return nil end
  local i = v.items
  if i[1].kind ~= "int" or i[2].kind ~= "int" or i[3].kind ~= "str" or i[4].kind ~= "bool" then return nil end
  return { range = v.range, items = i, min = i[1].value, max = i[2].value, network = text(i[3]), encrypted = i[4].value }
end

-- One HANDSHAKE's Noise message: message 1 shows its ephemeral key and init payload.
local function dissect_noise(tvb, sub, noise)
  if not noise.data or noise.data:len() <= 32 then return nil end
  local off = noise.data:offset()
  local init = init_payload(tvb, off + 32, off + noise.data:len())
  if not init then return nil end
  sub:add(f.ephemeral, tvb(off, 32))
  local t = sub:add(init.range, "init payload (in clear)")
  t:add(f.min_version, init.items[1].range, init.min)
  t:add(f.max_version, init.items[2].range, init.max)
  t:add(f.network_id, init.items[3].range, init.network)
  t:add(f.encrypted, init.items[4].range, init.encrypted)
  return init
end

-- One frame: `tvb` holds its 4-byte prefix and as much of its body as was captured;
-- `frame_end` is where it ends in the packet (for the session state).
local function dissect_frame(tvb, pinfo, tree, frame_end)
  local len = tvb(0, 4):uint()
  local have = tvb:len() - 4
  local sub = tree:add(aethel, tvb(), "aethel-p2p")
  sub:add(f.length, tvb(0, 4))
  local info
  if have < len then
    -- Cut short by the capture (snaplen): name the type if the captured start tells it.
    local type_code = (have >= 2 and tvb(4, 1):uint() >= 0x90 and tvb(4, 1):uint() <= 0x9f) and tvb(5, 1):uint() or nil
    if type_code and TYPES[type_code] then sub:add(f.type, tvb(5, 1), type_code) end
    if type_code == 1 then saw_handshake(pinfo, frame_end, nil) end
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
        if type_code == 1 and v.items[2] and v.items[2].kind == "bin" then
          local init = dissect_noise(tvb, sub, v.items[2])
          if init then
            info = string.format("HANDSHAKE -> e versions=%s..%s network=%s%s", tostring(init.min), tostring(init.max), init.network, init.encrypted and "" or " PLAINTEXT")
          else
            info = string.format("HANDSHAKE (encrypted handshake message, %d bytes)", v.items[2].data and v.items[2].data:len() or 0)
          end
          saw_handshake(pinfo, frame_end, init)
        end
      end
    end
  end
  sub:append_text(", " .. info)
  set_info(pinfo, info)
  return 4 + len
end

-- One record of an encrypted session: `tvb` holds its 2-byte length and as much of the
-- ciphertext as was captured. Opaque here: `aethel-p2p dump --pcap --keylog` opens it.
local function dissect_record(tvb, pinfo, tree)
  local len = tvb(0, 2):uint()
  local have = tvb:len() - 2
  local sub = tree:add(aethel, tvb(), "aethel-p2p record")
  sub:add(f.record, tvb(0, 2))
  local info = string.format("encrypted record (%d bytes)", len)
  if have < len then
    local note = string.format("%d of %d record bytes captured", math.max(have, 0), len)
    sub:add(f.truncated, have > 0 and tvb(2, have) or tvb(0, 2), note)
    info = string.format("%s [TRUNCATED: %s]", info, note)
  end
  sub:append_text(", " .. info)
  set_info(pinfo, info)
  return 2 + len
end

-- The PDU being read, as dissect_tcp_pdus asks for its length and then dissects it.
local pdu = { record = false, stop = 0 }

local function pdu_length(tvb, pinfo, offset)
  pdu.record = in_records(pinfo, offset)
  local n = pdu.record and tvb(offset, 2):uint() + 2 or tvb(offset, 4):uint() + 4
  pdu.stop = offset + n
  return n
end

local function dissect_pdu(tvb, pinfo, tree)
  if pdu.record then return dissect_record(tvb, pinfo, tree) end
  return dissect_frame(tvb, pinfo, tree, pdu.stop)
end

-- A packet the capture cut short: TCP cannot reassemble it, so walk the frames or records
-- it starts with as far as the captured bytes go, marking each one cut.
local function dissect_truncated(tvb, pinfo, tree)
  local off = 0
  local captured = tvb:len()
  while true do
    local record = in_records(pinfo, off)
    local hdr = record and 2 or 4
    if off + hdr > captured then break end
    local len = tvb(off, hdr):uint()
    if len > 64 * 1024 * 1024 then break end
    local take = math.min(hdr + len, captured - off)
    if record then dissect_record(tvb(off, take):tvb(), pinfo, tree)
    else dissect_frame(tvb(off, take):tvb(), pinfo, tree, off + hdr + len) end
    off = off + hdr + len
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
  dissect_tcp_pdus(tvb, tree, 4, pdu_length, dissect_pdu)
  return tvb:len()
end

-- A stream whose first bytes are a HANDSHAKE frame: length prefix, fixarray(2), type 1, bin.
local function heuristic(tvb, pinfo, tree)
  if tvb:len() < 7 then return false end
  local len = tvb(0, 4):uint()
  if len < 4 or len > 1010 or tvb(4, 1):uint() ~= 0x92 or tvb(5, 1):uint() ~= 0x01 then return false end
  local bin = tvb(6, 1):uint()
  if bin ~= 0xc4 and bin ~= 0xc5 then return false end
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
