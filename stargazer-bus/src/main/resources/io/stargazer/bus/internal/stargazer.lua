#!lua name=stargazer
-- Stargazer bus: the server-side logic of the bus as one Redis Functions library (Redis 7+), loaded by
-- `stargazer provision` (FUNCTION LOAD REPLACE). docs/functions.md documents every function: keys, arguments, reply.
--
-- Redis runs every command a function calls with the CALLER's ACL permissions, so no function can do more than its
-- caller could do directly; what a function adds is that it keeps its own promise whatever its arguments: it refuses
-- keys that are not of the shape it expects (a dedupe key that is not its stream's, a pause flag of another stream)
-- and XADD options that could trim what a group has not acknowledged. Errors start with "ERR stargazer:".
--
-- Bump VERSION whenever a function's contract or behaviour changes: the bus uses the library only at its own version
-- (sg_version), and provisioning replaces an older one.
--
-- Out of memory (maxmemory reached, noeviction): Redis refuses an FCALL as a whole, before it runs, unless the function
-- is registered with 'allow-oom' (or 'no-writes'); EVAL without a shebang, as in scripts mode, refuses only the commands
-- inside that may use memory. The bus's housekeeping must go on while Redis is full, or a live consumer loses its
-- entries to a takeover (sg_refresh refused) and a stream at its SAFE cap is never trimmed to make room (sg_trim
-- refused). So the functions below that only read, keep idle times, delete or trim (sg_trim, sg_refresh, sg_confirm,
-- sg_delete_idle_consumer, sg_resume, sg_tool_keep, sg_reply_stream_maintain) carry 'allow-oom'; 'allow-oom' also lets every command inside run, so none of
-- them may call a command that adds data. Everything that adds (XADD, SET, HSET) stays unflagged and is refused.
local VERSION = 10
-- The smallest cap a caller may ask for: BusConfig.MIN_STREAM_MAXLEN.
local MIN_CAP = 1000

-- BEGIN checks (also the prelude of the scripts made from sections: LibrarySource.script)
local function refuse(msg)
  error({err = 'ERR stargazer: ' .. msg})
end

-- Topology.slotKey: a key beside `stream` in its cluster slot.
local function slot_key(stream, suffix)
  local open = string.find(stream, '{', 1, true)
  if open then
    local close = string.find(stream, '}', open + 1, true)
    if close and close > open + 1 then return stream .. ':' .. suffix end
  end
  return '{' .. stream .. '}:' .. suffix
end

local function expect_key(actual, expected, what)
  if actual ~= expected then refuse(what .. " key '" .. tostring(actual) .. "' is not '" .. expected .. "'") end
end

local function whole(v, what, min)
  local n = tonumber(v)
  if not n or n ~= math.floor(n) or n < min then refuse(what .. " '" .. tostring(v) .. "' is not a whole number >= " .. min) end
  return n
end

local function check_keys(keys, n)
  if #keys ~= n then refuse('expected ' .. n .. ' keys, got ' .. #keys) end
end
-- END checks

-- Stream ids as (ms, seq) pairs of Lua numbers: exact below 2^53, which millisecond times are.
local function parse_id(id)
  local d = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, d - 1)), tonumber(string.sub(id, d + 1))
end

local function id_less(a, b)
  local am, as = parse_id(a)
  local bm, bs = parse_id(b)
  return am < bm or (am == bm and as < bs)
end

-- The oldest entry some group of `key` still needs (its oldest pending entry, or the one after its last delivered),
-- and that group's name; nil when the stream has no group. Only commands that return no entry's content.
local function safe_bound(key, groups)
  local safe, lagging = nil, ''
  for _, g in ipairs(groups) do
    local name, last
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] end
      if g[i] == 'last-delivered-id' then last = g[i + 1] end
    end
    local ms, seq = parse_id(last)
    local bound = ms .. '-' .. (seq + 1)
    local p = redis.call('XPENDING', key, name)
    if p[1] > 0 and id_less(p[2], bound) then bound = p[2] end
    if safe == nil or id_less(bound, safe) then safe, lagging = bound, name end
  end
  return safe, lagging
end

-- The XADD options a caller may pass (ARGV[from .. from+n-1]) and what they become. Accepted: none; MAXLEN ~ cap,
-- which here never trims below the safe bound when the stream has groups; ACKED MAXLEN ~ cap (Redis 8.2: the
-- server's own safe trim). Anything else (MAXLEN 0, MINID, exact trimming, LIMIT) is refused.
local function trim_options(key, argv, from, n, adding)
  if n == 0 then return {} end
  local acked = n == 4 and argv[from] == 'ACKED'
  local o = acked and from + 1 or from
  if not ((n == 3 or acked) and argv[o] == 'MAXLEN' and argv[o + 1] == '~') then
    refuse('XADD options may be only MAXLEN ~ <cap> or ACKED MAXLEN ~ <cap>')
  end
  local cap = whole(argv[o + 2], 'cap', MIN_CAP)
  if acked then return {'ACKED', 'MAXLEN', '~', cap} end
  if redis.call('XLEN', key) + adding <= cap then return {} end
  local groups = redis.call('XINFO', 'GROUPS', key)
  if #groups == 0 then return {'MAXLEN', '~', cap} end
  return {'MINID', '~', (safe_bound(key, groups))}
end

-- A stream's dedupe keys (Dedupe.java, docs/once.md): fields of two hashes, <slot key>:dedupe:0 and :1, taking turns by
-- period of the server's clock (one window long). dedupe_open: the current period's hash, and the previous period's
-- when it still holds that period (else nil); dedupe_find: the ids of the keys args[from .. to], by position (false
-- where neither hash has it); dedupe_record: pairs[1 .. n] (key, id, ...) into the current hash. The keys are looked
-- up where they lie in the arguments and found by position, not copied into tables keyed by string: per entry, that
-- Lua work cost more server time than the hash lookups themselves. Chunks of 500 keep unpack far below Lua's stack limit.
-- BEGIN dedupe (also the scripts' prelude: Dedupe.LIB)
local function dedupe_open(h0, h1, window)
  local t = redis.call('TIME')
  local b = math.floor((tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) / window)
  local cur, prev = h0, h1
  if b % 2 == 1 then cur, prev = h1, h0 end
  local period = string.format('%.0f', b)
  local mark = redis.call('HGET', cur, '')
  if mark ~= period then
    if mark then redis.call('UNLINK', cur) end
    redis.call('HSET', cur, '', period)
    redis.call('PEXPIREAT', cur, string.format('%.0f', (b + 2) * window))
  end
  if redis.call('HGET', prev, '') ~= string.format('%.0f', b - 1) then prev = nil end
  return cur, prev
end

local function dedupe_find(cur, prev, args, from, to)
  local found = {}
  for s = from, to, 500 do
    local e = math.min(s + 499, to)
    local o = s - from
    local got = redis.call('HMGET', cur, unpack(args, s, e))
    local miss = false
    for j = 1, e - s + 1 do
      if got[j] then found[o + j] = got[j] else miss = true end
    end
    if miss and prev then
      got = redis.call('HMGET', prev, unpack(args, s, e))
      for j = 1, e - s + 1 do
        if got[j] and not found[o + j] then found[o + j] = got[j] end
      end
    end
  end
  return found
end

local function dedupe_record(cur, pairs, n)
  for s = 1, n, 1000 do
    redis.call('HSET', cur, unpack(pairs, s, math.min(s + 999, n)))
  end
end
-- END dedupe

-- The dedupe hashes of `stream` must be keys[from] and keys[from + 1].
local function expect_dedupe_hashes(keys, from, stream)
  expect_key(keys[from], slot_key(stream, 'dedupe:0'), 'dedupe hash')
  expect_key(keys[from + 1], slot_key(stream, 'dedupe:1'), 'dedupe hash')
end

-- The entries' XADD arguments after the options: [head ...,] payload, trace_id[, dedupe_key][, traceparent[, tracestate]].
-- `args` holds XADD, the stream and the options up to `base`; what was past `m` from an earlier entry is cleared.
-- `head`: fields before the entry's own (an outbox entry's target and dedupe key), or nil.
-- BEGIN entry
local function entry_args(args, base, argv, i, dk, tp, head)
  args[base + 1] = '*'
  if head then
    for _, f in ipairs(head) do
      base = base + 1
      args[base + 1] = f
    end
  end
  args[base + 2] = 'payload'
  args[base + 3] = argv[i]
  args[base + 4] = 'trace_id'
  args[base + 5] = argv[i + 1]
  local m = base + 5
  if dk ~= '' then
    args[m + 1] = 'dedupe_key'
    args[m + 2] = dk
    m = m + 2
  end
  if tp then
    args[m + 1] = 'traceparent'
    args[m + 2] = argv[tp]
    m = m + 2
    if argv[tp + 1] ~= '' then
      args[m + 1] = 'tracestate'
      args[m + 2] = argv[tp + 1]
      m = m + 2
    end
  end
  for j = #args, m + 1, -1 do args[j] = nil end
end
-- END entry

-- Appends a batch without dedupe keys to KEYS[1]: ARGV[1] n, ARGV[2..1+n] XADD options, then `width` per entry.
local function publish_batch(keys, argv, width)
  check_keys(keys, 1)
  local n = whole(argv[1], 'option count', 0)
  local first = n + 2
  if #argv < first + width - 1 or (#argv - first + 1) % width ~= 0 then refuse('expected ' .. width .. ' arguments per entry') end
  local args = {'XADD', keys[1]}
  for _, o in ipairs(trim_options(keys[1], argv, 2, n, (#argv - first + 1) / width)) do args[#args + 1] = o end
  local base = #args
  local ids = {}
  if width == 2 then
    -- Untraced: the first entry as below (it carries the trim options), then only payload and trace_id change, as
    -- in the scripts' batch; building each entry through entry_args cost a sixth of plain publishing's throughput.
    entry_args(args, base, argv, first, '', nil)
    ids[1] = redis.call(unpack(args))
    local rest = {'XADD', keys[1], '*', 'payload', false, 'trace_id', false}
    for i = first + 2, #argv, 2 do
      rest[5] = argv[i]
      rest[7] = argv[i + 1]
      ids[#ids + 1] = redis.call(unpack(rest))
    end
    return ids
  end
  for i = first, #argv, width do
    entry_args(args, base, argv, i, '', width == 4 and i + 2 or nil)
    ids[#ids + 1] = redis.call(unpack(args))
    -- Only the first entry trims: the bound was computed for the whole batch.
    if base > 2 then
      for j = #args, 3, -1 do args[j] = nil end
      base = 2
    end
  end
  return ids
end

redis.register_function{function_name = 'sg_version', flags = {'no-writes'},
  callback = function(keys, argv) return VERSION end}

-- KEYS[1] stream. ARGV[1] n, ARGV[2..1+n] XADD options, then per entry: payload, trace_id. Returns the ids.
redis.register_function('sg_publish_batch', function(keys, argv) return publish_batch(keys, argv, 2) end)

-- As sg_publish_batch, per entry: payload, trace_id, traceparent, tracestate ('' for none).
redis.register_function('sg_publish_batch_traced', function(keys, argv) return publish_batch(keys, argv, 4) end)

-- KEYS[1] stream, KEYS[2..3] its dedupe hashes. ARGV[1] window ms, ARGV[2] width (2, or 4 with trace context),
-- ARGV[3] n, ARGV[4..3+n] XADD options, ARGV[4+n] c, the number of entries, then their c dedupe keys ('' for none), then
-- per entry `width` values: payload, trace_id[, traceparent, tracestate ('' for none)]. Returns each entry's id: the
-- first one's for a key already used within the window (also earlier in the batch).
redis.register_function('sg_publish', function(keys, argv)
  check_keys(keys, 3)
  local stream = keys[1]
  expect_dedupe_hashes(keys, 2, stream)
  local window = whole(argv[1], 'window', 1)
  local width = whole(argv[2], 'width', 2)
  if width ~= 2 and width ~= 4 then refuse("width '" .. argv[2] .. "' is not 2 or 4") end
  local n = whole(argv[3], 'option count', 0)
  local c = whole(argv[4 + n], 'entry count', 1)
  local kfrom = n + 5
  local e = kfrom + c
  if #argv ~= e - 1 + c * width then refuse('expected ' .. c .. ' dedupe keys and ' .. width .. ' arguments per entry') end
  local trim = trim_options(stream, argv, 4, n, c)
  local cur, prev = dedupe_open(keys[2], keys[3], window)
  local found = dedupe_find(cur, prev, argv, kfrom, e - 1)
  local args = {'XADD', stream}
  for _, o in ipairs(trim) do args[#args + 1] = o end
  local base = #args
  local ids, new, nn, seen = {}, {}, 0, {}
  for j = 1, c do
    local dk = argv[kfrom + j - 1]
    local id = dk ~= '' and (found[j] or seen[dk])
    if not id then
      entry_args(args, base, argv, e, dk, width == 4 and e + 2 or nil)
      id = redis.call(unpack(args))
      if base > 2 then
        for x = #args, 3, -1 do args[x] = nil end
        base = 2
      end
      if dk ~= '' then
        seen[dk] = id
        new[nn + 1] = dk
        new[nn + 2] = id
        nn = nn + 2
      end
    end
    ids[j] = id
    e = e + width
  end
  dedupe_record(cur, new, nn)
  return ids
end)

-- An answer's fields and dedupe keys from ARGV[p ..], in one of two forms. The answer form: payload, trace_id, reply
-- key (written as the fields payload, trace_id, dedupe_key). The relay form (docs/functions.md, relay mode): reply key,
-- the entry's own dedupe key ('' for none), then field, value, ... written as given. The reply key dedupes the answer
-- to one source entry; the own key dedupes the entry in the answer stream as a publish with that key would.
-- BEGIN reply
local function reply_parts(argv, p)
  if #argv == p + 2 then
    return argv[p + 2], '', {'payload', argv[p], 'trace_id', argv[p + 1], 'dedupe_key', argv[p + 2]}
  end
  local fields = {}
  for i = p + 2, #argv do fields[#fields + 1] = argv[i] end
  return argv[p], argv[p + 1], fields
end

-- Adds the answer to `stream` with XADD options `opts` unless its reply key or own key was used within the window;
-- returns its id and true, or the earlier entry's and false. Dead letters are stored once the same way (sg_dead_letter).
local function reply_add(stream, h0, h1, window, opts, rk, own, fields)
  local cur, prev = dedupe_open(h0, h1, window)
  local ask = {rk, own}
  local found = dedupe_find(cur, prev, ask, 1, own ~= '' and 2 or 1)
  local id = found[1] or found[2]
  if id then return id, false end
  local args = {'XADD', stream}
  for _, o in ipairs(opts) do args[#args + 1] = o end
  args[#args + 1] = '*'
  for _, f in ipairs(fields) do args[#args + 1] = f end
  id = redis.call(unpack(args))
  dedupe_record(cur, {rk, id, own, id}, own ~= '' and 4 or 2)
  return id, true
end
-- END reply

-- Answer and acknowledge in one step. KEYS[1] answer stream, KEYS[2..3] its dedupe hashes, KEYS[4] source stream.
-- ARGV[1] window ms, ARGV[2] group, ARGV[3] source id, ARGV[4] n, ARGV[5..4+n] XADD options, then either payload,
-- trace_id, dedupe key, or (the relay) dedupe key, own dedupe key ('' for none), field, value, ...; the dedupe key must
-- be reply:<source stream>:<source id>. Returns the answer's id (the earlier one's when either key was used).
redis.register_function('sg_reply', function(keys, argv)
  check_keys(keys, 4)
  expect_dedupe_hashes(keys, 2, keys[1])
  local window = whole(argv[1], 'window', 1)
  local n = whole(argv[4], 'option count', 0)
  local p = 5 + n
  if #argv ~= p + 2 and (#argv < p + 3 or (#argv - p - 1) % 2 ~= 0) then
    refuse('expected payload, trace_id, dedupe key, or dedupe key, own dedupe key and field/value pairs')
  end
  local rk, own, fields = reply_parts(argv, p)
  if rk ~= 'reply:' .. keys[4] .. ':' .. argv[3] then refuse("dedupe key '" .. rk .. "' is not reply:<source>:<id>") end
  local id = reply_add(keys[1], keys[2], keys[3], window, trim_options(keys[1], argv, 5, n, 1), rk, own, fields)
  redis.call('XACK', keys[4], argv[2], argv[3])
  return id
end)

-- A role's outbox in relay mode (docs/functions.md): KEYS[1] the outbox. ARGV[1] n, ARGV[2..1+n] XADD options, then per
-- entry: target stream, dedupe key, payload, trace_id, traceparent, tracestate ('' for none). Each entry is written as
-- target <stream> dedupe <key> payload .. trace_id .. [dedupe_key <key>] [traceparent .. [tracestate ..]]: the relay
-- adds everything after the first two fields to the target. Returns the ids.
-- BEGIN outbox
local function outbox_add(key, opts, argv, first)
  local ids = {}
  for i = first, #argv, 6 do
    -- Only the first entry trims: the bound was computed for the whole batch.
    local args = {'XADD', key}
    if i == first then for _, o in ipairs(opts) do args[#args + 1] = o end end
    entry_args(args, #args, argv, i + 2, argv[i + 1], argv[i + 4] ~= '' and i + 4 or nil, {'target', argv[i], 'dedupe', argv[i + 1]})
    ids[#ids + 1] = redis.call(unpack(args))
  end
  return ids
end
-- END outbox
redis.register_function('sg_outbox', function(keys, argv)
  check_keys(keys, 1)
  local n = whole(argv[1], 'option count', 0)
  local first = n + 2
  if #argv < first + 5 or (#argv - first + 1) % 6 ~= 0 then refuse('expected 6 arguments per entry') end
  return outbox_add(keys[1], trim_options(keys[1], argv, 2, n, (#argv - first + 1) / 6), argv, first)
end)

-- Puts one dead letter back. KEYS[1] source stream, KEYS[2] <source slot key>:replay:<dead stream>:<dead id>.
-- ARGV[1] window ms, ARGV[2] n, ARGV[3..2+n] XADD options, then field, value, ... with replay_of, <dead id> last.
-- Returns {1, id} when added, {0, id} when an earlier replay already added it.
redis.register_function('sg_replay', function(keys, argv)
  check_keys(keys, 2)
  local window = whole(argv[1], 'window', 1)
  local n = whole(argv[2], 'option count', 0)
  local first = 3 + n
  if (#argv - first + 1) % 2 ~= 0 or #argv < first + 1 or argv[#argv - 1] ~= 'replay_of' then
    refuse('expected field/value pairs ending with replay_of <dead id>')
  end
  local prefix = slot_key(keys[1], 'replay:')
  local suffix = ':' .. argv[#argv]
  if string.sub(keys[2], 1, #prefix) ~= prefix or string.sub(keys[2], -#suffix) ~= suffix then
    refuse("replay key '" .. keys[2] .. "' is not " .. prefix .. '<dead stream>' .. suffix)
  end
  local id = redis.call('GET', keys[2])
  if id then return {0, id} end
  local args = {'XADD', keys[1]}
  for _, o in ipairs(trim_options(keys[1], argv, 3, n, 1)) do args[#args + 1] = o end
  args[#args + 1] = '*'
  for i = first, #argv do args[#args + 1] = argv[i] end
  id = redis.call(unpack(args))
  redis.call('SET', keys[2], id, 'PX', window)
  return {1, id}
end)


-- A dead letter, stored once per entry and group: an entry whose acknowledgement after its dead letter was lost stays
-- pending and is dead-lettered again by whoever takes it over; its key, kept in the dead-letter stream's dedupe hashes
-- for the window, makes that second copy add nothing (DeadLetters.java). KEYS[1] dead-letter stream, KEYS[2..3] its
-- dedupe hashes. ARGV[1] window ms, ARGV[2] n, ARGV[3..2+n] XADD options, then the dead letter's key
-- (dead:<length of the source stream's name>:<source stream>:<source id>:<group>), then field, value, ... Returns {1, id} when added, {0, id} when that key's
-- dead letter was stored within the window.
redis.register_function('sg_dead_letter', function(keys, argv)
  check_keys(keys, 3)
  expect_dedupe_hashes(keys, 2, keys[1])
  local window = whole(argv[1], 'window', 1)
  local n = whole(argv[2], 'option count', 0)
  local key = argv[3 + n]
  if not key or string.sub(key, 1, 5) ~= 'dead:' then refuse("dead letter key '" .. tostring(key) .. "' is not dead:...") end
  if #argv < 5 + n or (#argv - 3 - n) % 2 ~= 0 then refuse('expected the dead letter key, then field/value pairs') end
  local fields = {}
  for i = 4 + n, #argv do fields[#fields + 1] = argv[i] end
  local id, added = reply_add(keys[1], keys[2], keys[3], window, trim_options(keys[1], argv, 3, n, 1), key, '', fields)
  return {added and 1 or 0, id}
end)

-- The SAFE trim. KEYS[1] stream; ARGV[1] cap (>= 1000); ARGV[2] (version 10, optional) '1': the caller saw groups on
-- the stream, so finding none it trims nothing (they were lost: a re-created group reads from before what is there).
-- Trims only below the oldest entry some group still needs; a stream without groups (unless held) to its cap.
-- Returns {length after, lagging group or '', has groups 0/1, trimmed 0/1}.
local function sg_trim(keys, argv)
  check_keys(keys, 1)
  local key = keys[1]
  local cap = whole(argv[1], 'cap', MIN_CAP)
  local hold = argv[2] == '1'
  if redis.call('EXISTS', key) == 0 then return {0, '', 0, 0} end
  local len = redis.call('XLEN', key)
  local groups = redis.call('XINFO', 'GROUPS', key)
  if #groups == 0 then
    if len > cap and not hold then redis.call('XTRIM', key, 'MAXLEN', '~', cap) end
    return {redis.call('XLEN', key), '', 0, 0}
  end
  if len < cap then return {len, '', 1, 0} end
  local target, lagging = safe_bound(key, groups)
  redis.call('XTRIM', key, 'MINID', '~', target)
  if redis.call('XLEN', key) >= cap then
    -- Approximate trimming removes whole nodes only; exact trimming still stops at the same safe id.
    redis.call('XTRIM', key, 'MINID', target)
  end
  return {redis.call('XLEN', key), lagging, 1, 1}
end
redis.register_function{function_name = 'sg_trim', callback = sg_trim, flags = {'allow-oom'}}

-- Pauses a group: KEYS[1] stream, KEYS[2] <stream's slot key>:paused:<group>; ARGV[1] group. 1 when set, 0 when it was.
redis.register_function('sg_pause', function(keys, argv)
  check_keys(keys, 2)
  expect_key(keys[2], slot_key(keys[1], 'paused:' .. tostring(argv[1])), 'pause')
  if redis.call('SET', keys[2], '1', 'NX') then return 1 end
  return 0
end)

-- Resumes a group: as sg_pause. 1 when the flag was removed, 0 when the group was not paused.
local function sg_resume(keys, argv)
  check_keys(keys, 2)
  expect_key(keys[2], slot_key(keys[1], 'paused:' .. tostring(argv[1])), 'pause')
  return redis.call('DEL', keys[2])
end
redis.register_function{function_name = 'sg_resume', callback = sg_resume, flags = {'allow-oom'}}

-- Keeps a consumer's entries: KEYS[1] stream; ARGV group, consumer, ids. Resets the idle time of those still pending
-- with the consumer; returns the ids that are not.
-- BEGIN refresh
local function sg_refresh(keys, argv)
  check_keys(keys, 1)
  local lost = {}
  for i = 3, #argv do
    local p = redis.call('XPENDING', keys[1], argv[1], argv[i], argv[i], 1)
    if #p == 1 and p[1][2] == argv[2] then
      redis.call('XCLAIM', keys[1], argv[1], argv[2], 0, argv[i], 'JUSTID')
    else
      lost[#lost + 1] = argv[i]
    end
  end
  return lost
end
-- END refresh
-- XCLAIM of an entry already pending with this consumer: moves nothing, adds nothing.
redis.register_function{function_name = 'sg_refresh', callback = sg_refresh, flags = {'allow-oom'}}

-- KEYS[1] stream; ARGV group, consumer, id, count (1: a new delivery, count it). The entry's delivery count when it
-- is pending with the consumer, -1 when not, -2 when it is pending but was deleted from the stream.
-- BEGIN confirm
local function sg_confirm(keys, argv)
  check_keys(keys, 1)
  local p = redis.call('XPENDING', keys[1], argv[1], argv[3], argv[3], 1)
  if #p == 0 or p[1][2] ~= argv[2] then return -1 end
  if argv[4] == '1' then
    local e = redis.call('XCLAIM', keys[1], argv[1], argv[2], 0, argv[3], 'IDLE', p[1][3])
    if #e == 0 or not e[1] then return -2 end
    return p[1][4] + 1
  end
  return p[1][4]
end
-- END confirm
redis.register_function{function_name = 'sg_confirm', callback = sg_confirm, flags = {'allow-oom'}}

-- KEYS[1] stream; ARGV group, consumer. Deletes the consumer when it holds nothing; -1 when it does.
-- BEGIN delete_idle_consumer
local function sg_delete_idle_consumer(keys, argv)
  check_keys(keys, 1)
  local p = redis.call('XPENDING', keys[1], argv[1], '-', '+', 1, argv[2])
  if #p == 0 then return redis.call('XGROUP', 'DELCONSUMER', keys[1], argv[1], argv[2]) end
  return -1
end
-- END delete_idle_consumer
redis.register_function{function_name = 'sg_delete_idle_consumer', callback = sg_delete_idle_consumer, flags = {'allow-oom'}}

-- BEGIN tool_keys
-- The tools service's run lease and stored reply of one request: <tools slot key>:result:<id>, ...:run:<id>.
local function tool_keys(keys)
  check_keys(keys, 2)
  local at = string.find(keys[1], ':result:', 1, true)
  if not at then refuse("result key '" .. keys[1] .. "' has no :result:") end
  expect_key(keys[2], string.sub(keys[1], 1, at - 1) .. ':run:' .. string.sub(keys[1], at + 8), 'run')
end
-- END tool_keys

-- KEYS result key, run key; ARGV owner, lease ms. {'done', reply} | {'run', ''} | {'busy', owner}.
-- BEGIN tool_begin
local function sg_tool_begin(keys, argv)
  tool_keys(keys)
  local r = redis.call('GET', keys[1])
  if r then return {'done', r} end
  if redis.call('SET', keys[2], argv[1], 'NX', 'PX', argv[2]) then return {'run', ''} end
  local owner = redis.call('GET', keys[2])
  if owner == argv[1] then
    redis.call('PEXPIRE', keys[2], argv[2])
    return {'run', ''}
  end
  return {'busy', owner or ''}
end
-- END tool_begin
redis.register_function('sg_tool_begin', sg_tool_begin)

-- KEYS result key, run key; ARGV owner, lease ms. 1: renewed. 2: the lease had lapsed while its owner still runs the
-- tool (Redis paused or unreachable for longer than the lease) and no reply is stored: taken back, so that a copy of
-- the request does not start the tool again. 0: another owner holds it. -1: it had lapsed and a reply is stored.
-- BEGIN tool_renew
local function sg_tool_renew(keys, argv)
  tool_keys(keys)
  local owner = redis.call('GET', keys[2])
  if owner == argv[1] then
    redis.call('PEXPIRE', keys[2], argv[2])
    return 1
  end
  if owner then return 0 end
  if redis.call('GET', keys[1]) then return -1 end
  redis.call('SET', keys[2], argv[1], 'PX', argv[2])
  return 2
end
-- END tool_renew
redis.register_function('sg_tool_renew', sg_tool_renew)

-- KEYS result key, run key; ARGV owner, lease ms. The owner's renewal alone, which adds nothing, so it carries
-- 'allow-oom': called when Redis out of memory refused sg_tool_renew (whose taking back of a lapsed lease adds a key).
-- 1: renewed. 0: another owner holds it. -2: it had lapsed; not taken back here (the next sg_tool_renew does).
-- BEGIN tool_keep
local function sg_tool_keep(keys, argv)
  tool_keys(keys)
  local owner = redis.call('GET', keys[2])
  if owner == argv[1] then
    redis.call('PEXPIRE', keys[2], argv[2])
    return 1
  end
  if owner then return 0 end
  return -2
end
-- END tool_keep
redis.register_function{function_name = 'sg_tool_keep', callback = sg_tool_keep, flags = {'allow-oom'}}

-- KEYS result key, run key; ARGV reply, window ms, owner. Stores the reply unless one is stored already (a second run
-- of the request, after a lapsed lease, must not replace the answer a copy may have been given), and drops the owner's
-- lease. {'stored', ''} | {'done', the reply stored before}.
-- BEGIN tool_finish
local function sg_tool_finish(keys, argv)
  tool_keys(keys)
  local earlier = redis.call('GET', keys[1])
  if not earlier then redis.call('SET', keys[1], argv[1], 'PX', argv[2]) end
  if redis.call('GET', keys[2]) == argv[3] then redis.call('DEL', keys[2]) end
  if earlier then return {'done', earlier} end
  return {'stored', ''}
end
-- END tool_finish
redis.register_function('sg_tool_finish', sg_tool_finish)

-- BEGIN expire_at_least
-- A reply stream's expiry is only ever lengthened: each client of it (a worker restarted with its node id, a second
-- client after a first closed) keeps it for its own calls' answers, and none may cut another's short (docs/tools.md).
local function expire_at_least(key, ms)
  if redis.call('PTTL', key) < tonumber(ms) then redis.call('PEXPIRE', key, ms) end
end
-- END expire_at_least

-- A worker's own tools reply stream. KEYS[1] the stream; ARGV[1] expiry ms (at least). Creates it empty; returns the
-- id read after.
-- BEGIN reply_stream_init
local function sg_reply_stream_init(keys, argv)
  check_keys(keys, 1)
  local id = redis.call('XADD', keys[1], '*', 'init', '1')
  redis.call('XDEL', keys[1], id)
  redis.call('XTRIM', keys[1], 'MINID', id)
  expire_at_least(keys[1], argv[1])
  return id
end
-- END reply_stream_init
redis.register_function('sg_reply_stream_init', sg_reply_stream_init)

-- KEYS[1] the reply stream; ARGV expiry ms (at least), the last id read ('0-0': none), cap. Drops what was read, caps
-- the rest. 'allow-oom' (version 9): a tools client runs it before each read, so refused while Redis is full it kept the
-- client from reading replies already stored; it only lengthens an expiry and trims.
-- BEGIN reply_stream_maintain
local function sg_reply_stream_maintain(keys, argv)
  check_keys(keys, 1)
  expire_at_least(keys[1], argv[1])
  if argv[2] ~= '0-0' then redis.call('XTRIM', keys[1], 'MINID', argv[2]) end
  redis.call('XTRIM', keys[1], 'MAXLEN', '~', argv[3])
  return 1
end
-- END reply_stream_maintain
redis.register_function{function_name = 'sg_reply_stream_maintain', callback = sg_reply_stream_maintain, flags = {'allow-oom'}}
