--[[----------------------------------------------------------------------------
Json.lua: a JSON encoder and decoder for Lua 5.1, written for this plug-in
because Lightroom ships none.

Values map as follows:
  JSON object  <-> Lua table with string keys
  JSON array   <-> Lua table with keys 1..n (marked with Json.array so that an
                   empty array stays an array when it is encoded again)
  JSON null    <-> Json.null (a sentinel; Lua's nil cannot sit in a table)
  strings      <-> Lua strings holding UTF-8 (\uXXXX escapes, surrogate pairs
                   included, decode to UTF-8)
  numbers      <-> Lua numbers (doubles)

Errors raise a message that names the byte position ("at byte 17").
------------------------------------------------------------------------------]]

local Json = {}

local arrayMeta = { __jsontype = "array" }
local objectMeta = { __jsontype = "object" }

--- The JSON null value.
Json.null = setmetatable({}, { __tostring = function() return "null" end, __jsontype = "null" })

--- Marks `t` (default: a new table) as a JSON array, so an empty one encodes as `[]`.
function Json.array(t)
    return setmetatable(t or {}, arrayMeta)
end

--- Marks `t` (default: a new table) as a JSON object, so an empty one encodes as `{}`.
function Json.object(t)
    return setmetatable(t or {}, objectMeta)
end

--- True when `t` is a table that encodes as a JSON array.
function Json.isArray(t)
    if type(t) ~= "table" or t == Json.null then
        return false
    end
    local meta = getmetatable(t)
    if meta == arrayMeta then
        return true
    elseif meta == objectMeta then
        return false
    end
    local n = 0
    for k in pairs(t) do
        if type(k) ~= "number" or k < 1 or k % 1 ~= 0 then
            return false
        end
        n = n + 1
    end
    if n == 0 then
        return false -- an unmarked empty table is an object
    end
    for i = 1, n do
        if t[i] == nil then
            return false
        end
    end
    return true
end

-- Encoding ---------------------------------------------------------------------

local escapes = {
    ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
    ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function encodeString(s)
    return '"' .. s:gsub('[%c"\\]', function(c)
        return escapes[c] or string.format("\\u%04x", c:byte())
    end) .. '"'
end

local function encodeNumber(x)
    if x ~= x or x == math.huge or x == -math.huge then
        error("Json.encode: cannot encode " .. tostring(x) .. " (JSON has no NaN or infinity)", 0)
    end
    if x % 1 == 0 and math.abs(x) < 2 ^ 53 then
        return string.format("%d", x)
    end
    return string.format("%.17g", x)
end

local encodeValue

local function encodeTable(t, seen, out)
    if seen[t] then
        error("Json.encode: cannot encode a table that contains itself", 0)
    end
    seen[t] = true
    if Json.isArray(t) then
        out[#out + 1] = "["
        for i = 1, #t do
            if i > 1 then
                out[#out + 1] = ","
            end
            encodeValue(t[i], seen, out)
        end
        out[#out + 1] = "]"
    else
        local keys = {}
        for k in pairs(t) do
            if type(k) ~= "string" then
                error("Json.encode: object keys must be strings, got " .. type(k), 0)
            end
            keys[#keys + 1] = k
        end
        table.sort(keys) -- stable output makes logs and tests readable
        out[#out + 1] = "{"
        for i, k in ipairs(keys) do
            if i > 1 then
                out[#out + 1] = ","
            end
            out[#out + 1] = encodeString(k)
            out[#out + 1] = ":"
            encodeValue(t[k], seen, out)
        end
        out[#out + 1] = "}"
    end
    seen[t] = nil
end

encodeValue = function(v, seen, out)
    local kind = type(v)
    if v == Json.null or v == nil then
        out[#out + 1] = "null"
    elseif kind == "boolean" then
        out[#out + 1] = v and "true" or "false"
    elseif kind == "number" then
        out[#out + 1] = encodeNumber(v)
    elseif kind == "string" then
        out[#out + 1] = encodeString(v)
    elseif kind == "table" then
        encodeTable(v, seen, out)
    else
        error("Json.encode: cannot encode a " .. kind, 0)
    end
end

--- Encodes a Lua value as one line of JSON text (no newlines inside).
function Json.encode(value)
    local out = {}
    encodeValue(value, {}, out)
    return table.concat(out)
end

-- Decoding ---------------------------------------------------------------------

local function fail(text, pos, what)
    local near = text:sub(pos, pos + 15)
    error(string.format("Json.decode: %s at byte %d near '%s'", what, pos, near), 0)
end

local function skipSpace(text, pos)
    return text:find("[^ \t\r\n]", pos) or (#text + 1)
end

local function utf8Char(code)
    if code < 0x80 then
        return string.char(code)
    elseif code < 0x800 then
        return string.char(0xC0 + math.floor(code / 0x40), 0x80 + code % 0x40)
    elseif code < 0x10000 then
        return string.char(0xE0 + math.floor(code / 0x1000), 0x80 + math.floor(code / 0x40) % 0x40,
            0x80 + code % 0x40)
    end
    return string.char(0xF0 + math.floor(code / 0x40000), 0x80 + math.floor(code / 0x1000) % 0x40,
        0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
end

local simpleEscapes = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function readHex4(text, pos)
    local hex = text:sub(pos, pos + 3)
    if not hex:match("^%x%x%x%x$") then
        fail(text, pos, "bad \\u escape")
    end
    return tonumber(hex, 16)
end

local function decodeString(text, pos)
    -- pos is at the opening quote
    local parts = {}
    local i = pos + 1
    while true do
        local j = text:find('["\\%c]', i)
        if not j then
            fail(text, pos, "unterminated string")
        end
        parts[#parts + 1] = text:sub(i, j - 1)
        local c = text:sub(j, j)
        if c == '"' then
            return table.concat(parts), j + 1
        elseif c == "\\" then
            local e = text:sub(j + 1, j + 1)
            if simpleEscapes[e] then
                parts[#parts + 1] = simpleEscapes[e]
                i = j + 2
            elseif e == "u" then
                local code = readHex4(text, j + 2)
                i = j + 6
                if code >= 0xD800 and code <= 0xDBFF then
                    if text:sub(i, i + 1) ~= "\\u" then
                        fail(text, j, "lone high surrogate")
                    end
                    local low = readHex4(text, i + 2)
                    if low < 0xDC00 or low > 0xDFFF then
                        fail(text, i, "bad low surrogate")
                    end
                    code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
                    i = i + 6
                elseif code >= 0xDC00 and code <= 0xDFFF then
                    fail(text, j, "lone low surrogate")
                end
                parts[#parts + 1] = utf8Char(code)
            else
                fail(text, j, "bad escape")
            end
        else
            fail(text, j, "control character in string")
        end
    end
end

local function decodeNumber(text, pos)
    -- JSON grammar: -? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][-+]?[0-9]+)?
    local i = pos
    if text:sub(i, i) == "-" then
        i = i + 1
    end
    local int = text:match("^0", i) or text:match("^[1-9]%d*", i)
    if not int then
        fail(text, pos, "bad number")
    end
    i = i + #int
    local frac = text:match("^%.%d+", i)
    if frac then
        i = i + #frac
    elseif text:sub(i, i) == "." then
        fail(text, pos, "bad number")
    end
    local exp = text:match("^[eE][-+]?%d+", i)
    if exp then
        i = i + #exp
    elseif text:match("^[eE]", i) then
        fail(text, pos, "bad number")
    end
    return tonumber(text:sub(pos, i - 1)), i
end

local decodeValue

local function decodeArray(text, pos)
    local result = Json.array()
    pos = skipSpace(text, pos + 1)
    if text:sub(pos, pos) == "]" then
        return result, pos + 1
    end
    while true do
        local v
        v, pos = decodeValue(text, pos)
        result[#result + 1] = v
        pos = skipSpace(text, pos)
        local c = text:sub(pos, pos)
        if c == "]" then
            return result, pos + 1
        elseif c ~= "," then
            fail(text, pos, "expected ',' or ']'")
        end
        pos = pos + 1
    end
end

local function decodeObject(text, pos)
    local result = Json.object()
    pos = skipSpace(text, pos + 1)
    if text:sub(pos, pos) == "}" then
        return result, pos + 1
    end
    while true do
        pos = skipSpace(text, pos)
        if text:sub(pos, pos) ~= '"' then
            fail(text, pos, "expected a string key")
        end
        local key
        key, pos = decodeString(text, pos)
        pos = skipSpace(text, pos)
        if text:sub(pos, pos) ~= ":" then
            fail(text, pos, "expected ':'")
        end
        local v
        v, pos = decodeValue(text, pos + 1)
        result[key] = v
        pos = skipSpace(text, pos)
        local c = text:sub(pos, pos)
        if c == "}" then
            return result, pos + 1
        elseif c ~= "," then
            fail(text, pos, "expected ',' or '}'")
        end
        pos = pos + 1
    end
end

local literals = { ["true"] = true, ["false"] = false }

decodeValue = function(text, pos)
    pos = skipSpace(text, pos)
    local c = text:sub(pos, pos)
    if c == "{" then
        return decodeObject(text, pos)
    elseif c == "[" then
        return decodeArray(text, pos)
    elseif c == '"' then
        return decodeString(text, pos)
    elseif c == "-" or c:match("%d") then
        return decodeNumber(text, pos)
    end
    for word, value in pairs(literals) do
        if text:sub(pos, pos + #word - 1) == word then
            return value, pos + #word
        end
    end
    if text:sub(pos, pos + 3) == "null" then
        return Json.null, pos + 4
    end
    if c == "" then
        fail(text, pos, "unexpected end of text")
    end
    fail(text, pos, "unexpected character")
end

--- Decodes one JSON document; raises an error naming the byte position on bad input.
function Json.decode(text)
    if type(text) ~= "string" then
        error("Json.decode: expected a string, got " .. type(text), 0)
    end
    local value, pos = decodeValue(text, 1)
    pos = skipSpace(text, pos)
    if pos <= #text then
        fail(text, pos, "trailing text after the JSON value")
    end
    return value
end

--- Like Json.decode but returns `nil, message` instead of raising.
function Json.tryDecode(text)
    local ok, result = pcall(Json.decode, text)
    if ok then
        return result
    end
    return nil, result
end

return Json
