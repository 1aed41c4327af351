-- monotonic-nonce: one account's nonce state, checked and recorded atomically.
-- The rules are those of the in-memory states (src/validator/state.rs,
-- highest.rs, window.rs); the conformance tests in tests/redis.rs drive this
-- script and the in-memory validator
-- with the same random sequences and requires the same verdicts.
--
-- KEYS[1]  the account's key ({prefix:account}: one key, one hash slot)
-- ARGV[1]  31 bytes, big-endian (one argument: each argument is a Lua string
--          Redis builds per call, so one costs less than five):
--            op (1 byte): 'v' validate (check, then record), 'c' check, 'l' last nonce
--            policy (1): 'S' Strict, 'K' HighestK, 'W' Window
--            param (4): the policy's k or w (0 for Strict)
--            nonce (8), then floor (8): the gateway's restart guard
--            ttl (8): the key's time to live in ms after this nonce (0: none),
--            from the gateway's clock, below 2^52 (so it is exact as a double)
--            node (1): 'C' on a cluster: the reply is {reply, CLUSTER MYID}, so
--            the gateway knows which master answered (a redirect after a
--            failover is then seen before its verdict is trusted); '-' otherwise
--
-- Reply: 0 when accepted (or, for 'c', acceptable); else {code, hi, lo}: code
-- 1 already used, 2 too low, hi/lo a nonce to move past (the highest accepted,
-- or the floor, whichever is higher); or, for Strict refused by a stored nonce
-- above the floor, that stored value ('S' and the nonce, 9 bytes). For 'l':
-- {3, hi, lo}, or {4, 0, 0} when unknown.
--
-- Nonces are u64; Lua numbers are doubles, so a nonce is never one number here:
-- it is a pair of 32-bit halves, compared pairwise, and a difference is formed
-- only where it is known to be below 2^52.
--
-- Value layout (big-endian): byte 1 the policy tag, then
--   S: last (8 bytes)
--   K: count (4 bytes), then count nonces ascending (8 bytes each)
--   W: highest (8), low (8), ring flag (1): 0 = the run [low, highest] was
--      seen and nothing else in the window; 1 = the ring follows: w/64 + 2
--      words (RFC 6479, one spare word), bit (n mod 64L) says whether n was seen.

local key = KEYS[1]
local op, policy, param, nh, nl, gh, gl, th, tl, node = struct.unpack('>BBI4I4I4I4I4I4I4B', ARGV[1])
local ttl = th * 4294967296 + tl

-- Every answer goes out through `answer`: on a cluster it names the master
-- that gave it.
local function answer(r)
  if node == 67 then -- 'C'
    return {r, redis.call('CLUSTER', 'MYID')}
  end
  return r
end

-- Strict, validate or check: the common case, inline (no helper closures, one GET,
-- at most one SET, one unpack of the value and one pack of the new one). A refusal by a stored nonce
-- above the floor answers with the stored value itself (no reply table to build):
-- the gateway reads AlreadyUsed when its nonce equals the one in it, else TooLow.
if policy == 83 and op ~= 108 then -- 'S', and not 'l'
  local value = redis.call('GET', key)
  if value then
    if #value ~= 9 then
      return answer(redis.error_reply('monotonic-nonce: the key holds state of another policy'))
    end
    local tag, vh, vl = struct.unpack('>BI4I4', value)
    if tag ~= 83 then
      return answer(redis.error_reply('monotonic-nonce: the key holds state of another policy'))
    end
    if (vh > gh or (vh == gh and vl > gl)) and (nh < vh or (nh == vh and nl <= vl)) then return answer(value) end
  end
  if nh < gh or (nh == gh and nl <= gl) then return answer({2, gh, gl}) end
  if op == 118 then -- 'v'
    if ttl > 0 then
      redis.call('SET', key, struct.pack('>BI4I4', 83, nh, nl), 'KEEPTTL')
      local cur = redis.call('PTTL', key)
      if cur < ttl then redis.call('PEXPIRE', key, ttl) end
    else
      -- without time bounds no key has a time to live to keep
      redis.call('SET', key, struct.pack('>BI4I4', 83, nh, nl))
    end
  end
  return answer(0)
end

op, policy = string.char(op), string.char(policy)
local TWO32 = 4294967296
local RING_BYTE = 26 -- 0-based offset of the ring in a W value

local function cmp(ah, al, bh, bl)
  if ah ~= bh then return ah < bh and -1 or 1 end
  if al ~= bl then return al < bl and -1 or 1 end
  return 0
end

-- a - b for a >= b, or nil when it may not fit 2^52 (then it exceeds every window)
local function diff(ah, al, bh, bl)
  local dh = ah - bh
  if dh > 1048576 then return nil end
  return dh * TWO32 + (al - bl)
end

local function pack(h, l) return struct.pack('>I4I4', h, l) end

local function ring_words(w) return math.ceil(w / 64) + 1 end

-- n mod m for n = (h, l); every product stays below 2^43
local function mod(h, l, m)
  return ((h % m) * (TWO32 % m) + l) % m
end

local function expire()
  if ttl > 0 then
    local cur = redis.call('PTTL', key)
    if cur < 0 or cur < ttl then redis.call('PEXPIRE', key, ttl) end
  end
end

-- the refusal for (n) with highest (hh, hl) and the floor: report the higher
local function refuse(code, hh, hl)
  if cmp(hh, hl, gh, gl) < 0 then return {code, gh, gl} end
  return {code, hh, hl}
end

local value = nil
if policy == 'W' then
  value = redis.call('GETRANGE', key, 0, RING_BYTE - 1)
  if value == '' then value = nil end
else
  value = redis.call('GET', key)
  if not value then value = nil end
end
if value and string.sub(value, 1, 1) ~= policy then
  return answer(redis.error_reply('monotonic-nonce: the key holds state of another policy'))
end

if op == 'l' then
  if not value then return answer({4, 0, 0}) end
  if policy == 'S' or policy == 'W' then
    local h, l = struct.unpack('>I4I4', value, 2)
    return answer({3, h, l})
  end
  local count = struct.unpack('>I4', value, 2)
  local h, l = struct.unpack('>I4I4', value, 6 + (count - 1) * 8)
  return answer({3, h, l})
end

-- below or at the floor: refused, whatever the state
if cmp(nh, nl, gh, gl) <= 0 then
  if not value then return answer({2, gh, gl}) end
  local h, l
  if policy == 'K' then
    local count = struct.unpack('>I4', value, 2)
    h, l = struct.unpack('>I4I4', value, 6 + (count - 1) * 8)
  else
    h, l = struct.unpack('>I4I4', value, 2)
  end
  return answer(refuse(2, h, l))
end

local record = (op == 'v')

-- Strict never gets here but for 'l' (answered above): only K and W from now on
if not value then
  if record then
    if policy == 'K' then
      redis.call('SET', key, 'K' .. struct.pack('>I4', 1) .. pack(nh, nl))
    else
      redis.call('SET', key, 'W' .. pack(nh, nl) .. pack(nh, nl) .. '\0')
    end
    expire()
  end
  return answer(0)
end

if policy == 'K' then
  local k = param
  local count = struct.unpack('>I4', value, 2)
  local hs, ls = {}, {}
  local pos = 6
  for i = 1, count do
    hs[i], ls[i], pos = struct.unpack('>I4I4', value, pos)
  end
  local th, tl = hs[count], ls[count]
  local at = count + 1 -- where n goes: the first value above it
  for i = 1, count do
    local c = cmp(nh, nl, hs[i], ls[i])
    if c == 0 then return answer(refuse(1, th, tl)) end
    if c < 0 then at = i break end
  end
  if count >= k and at == 1 then return answer(refuse(2, th, tl)) end
  if record then
    local parts = {}
    local first = 1
    if count >= k then first = 2 end -- the smallest makes room
    for i = first, at - 1 do parts[#parts + 1] = pack(hs[i], ls[i]) end
    parts[#parts + 1] = pack(nh, nl)
    for i = at, count do parts[#parts + 1] = pack(hs[i], ls[i]) end
    redis.call('SET', key, 'K' .. struct.pack('>I4', #parts) .. table.concat(parts), 'KEEPTTL')
    expire()
  end
  return answer(0)
end

-- Window(w)
local w = param
local hh, hl, pos = struct.unpack('>I4I4', value, 2)
local lh, ll = struct.unpack('>I4I4', value, pos)
local has_ring = string.byte(value, RING_BYTE) == 1
local len = ring_words(w)
local bits = len * 64

-- a ring string with bits [i, j] set (0 <= i <= j < bits), MSB first in each byte
local function run_bytes(i, j)
  local bytes = bits / 8
  local bi, bj = math.floor(i / 8), math.floor(j / 8)
  local head = 2 ^ (8 - i % 8) - 1
  local tail = 255 - (2 ^ (7 - j % 8) - 1)
  if bi == bj then
    return string.rep('\0', bi) .. string.char(head - (255 - tail)) .. string.rep('\0', bytes - bi - 1)
  end
  return string.rep('\0', bi) .. string.char(head) .. string.rep('\255', bj - bi - 1)
    .. string.char(tail) .. string.rep('\0', bytes - bj - 1)
end

-- OR of two equally long byte strings (the ring of a run that wraps)
local function bor(a, b)
  local out = {}
  for i = 1, #a do out[i] = string.char(bit.bor(string.byte(a, i), string.byte(b, i))) end
  return table.concat(out)
end

local function ring_bit(h, l)
  return RING_BYTE * 8 + mod(h, l, bits)
end

if cmp(nh, nl, hh, hl) <= 0 then
  local d = diff(hh, hl, nh, nl)
  if d == nil or d > w then return answer(refuse(2, hh, hl)) end
  local seen
  if has_ring then
    seen = redis.call('GETBIT', key, ring_bit(nh, nl)) == 1
  else
    seen = cmp(nh, nl, lh, ll) >= 0
  end
  if seen then return answer(refuse(1, hh, hl)) end
  if not record then return answer(0) end
else
  if not record then return answer(0) end
  local d = diff(nh, nl, hh, hl)
  if d == nil or d > w then
    -- a jump past the whole window: everything seen falls out
    redis.call('SET', key, 'W' .. pack(nh, nl) .. pack(nh, nl) .. '\0', 'KEEPTTL')
    expire()
    return answer(0)
  end
  if not has_ring and d == 1 then
    -- the run grows: no ring needed
    redis.call('SETRANGE', key, 1, pack(nh, nl))
    expire()
    return answer(0)
  end
end

-- from here on: record n into the ring, building it first if needed
if not has_ring then
  -- the run [max(low, highest - w), highest] as ring bits
  local sh, sl = lh, ll
  local back = diff(hh, hl, lh, ll)
  if back == nil or back > w then
    -- start at highest - w (w < 2^21 and highest > w here, so the halves stay exact)
    local start = hl - w
    sh, sl = hh, start
    if start < 0 then sh, sl = hh - 1, start + TWO32 end
  end
  local i, j = mod(sh, sl, bits), mod(hh, hl, bits)
  local ring
  if i <= j then
    ring = run_bytes(i, j)
  else
    ring = bor(run_bytes(i, bits - 1), run_bytes(0, j))
  end
  redis.call('SETRANGE', key, RING_BYTE - 1, '\1' .. ring)
end

if cmp(nh, nl, hh, hl) > 0 then
  -- the window moves: clear the ring words of the blocks (block(highest), block(n)]
  local d = diff(nh, nl, hh, hl)
  local blocks = math.floor((hl % 64 + d) / 64)
  if blocks >= len then
    redis.call('SETRANGE', key, RING_BYTE, string.rep('\0', len * 8))
  else
    local word = math.floor(mod(hh, hl, bits) / 64)
    for b = 1, blocks do
      redis.call('SETRANGE', key, RING_BYTE + ((word + b) % len) * 8, string.rep('\0', 8))
    end
  end
  redis.call('SETRANGE', key, 1, pack(nh, nl))
end
redis.call('SETBIT', key, ring_bit(nh, nl), 1)
expire()
return answer(0)
