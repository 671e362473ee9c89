-- The plug-in's JSON codec: random documents round-trip through it, and it reads
-- lua-cjson's text of the same documents (and cjson reads ours) to equal values.
package.path = "hotpixel.lrdevplugin/?.lua;tests/lua/support/?.lua;" .. package.path

local Json = require "Json"
local cjson = require "cjson"

local function utf8Char(code)
    if code < 0x80 then
        return string.char(code)
    elseif code < 0x800 then
        return string.char(0xC0 + math.floor(code / 64), 0x80 + code % 64)
    elseif code < 0x10000 then
        return string.char(0xE0 + math.floor(code / 4096), 0x80 + math.floor(code / 64) % 64, 0x80 + code % 64)
    end
    return string.char(0xF0 + math.floor(code / 262144), 0x80 + math.floor(code / 4096) % 64,
        0x80 + math.floor(code / 64) % 64, 0x80 + code % 64)
end

-- Code points that exercise every escape path: controls, quotes, ASCII, accents, CJK, astral.
local interestingCodes = { 0, 1, 8, 9, 10, 13, 31, 34, 47, 92, 127, 0xE9, 0x7FF, 0x800, 0x4E2D, 0xFFFD, 0x10000,
    0x1F600, 0x10FFFF }

local function randomString(rng)
    local parts = {}
    for _ = 1, rng(0, 12) do
        if rng(1, 3) == 1 then
            parts[#parts + 1] = utf8Char(interestingCodes[rng(1, #interestingCodes)])
        else
            parts[#parts + 1] = string.char(rng(32, 126))
        end
    end
    return table.concat(parts)
end

local function randomNumber(rng)
    local kind = rng(1, 4)
    if kind == 1 then
        return rng(-100000, 100000)
    elseif kind == 2 then
        return rng(-4096, 4096) / 64 -- exact binary fractions
    elseif kind == 3 then
        return rng(1, 9) * 10 ^ rng(-30, 30) * (rng(0, 1) * 2 - 1)
    end
    return 2 ^ 52 + rng(0, 1000)
end

local function randomValue(rng, depth)
    local kind = rng(1, depth > 3 and 5 or 7)
    if kind == 1 then
        return Json.null
    elseif kind == 2 then
        return rng(0, 1) == 1
    elseif kind == 3 then
        return randomNumber(rng)
    elseif kind <= 5 then
        return randomString(rng)
    elseif kind == 6 then
        local t = Json.array()
        for i = 1, rng(0, 5) do
            t[i] = randomValue(rng, depth + 1)
        end
        return t
    end
    local t = Json.object()
    for _ = 1, rng(0, 5) do
        t[randomString(rng)] = randomValue(rng, depth + 1)
    end
    return t
end

-- Structural equality; `fromCjson` maps cjson's null and tolerates its 14-digit numbers.
local function same(a, b, tolerance)
    if a == Json.null or a == cjson.null then
        return b == Json.null or b == cjson.null
    end
    if type(a) == "number" and type(b) == "number" then
        if a == b then
            return true
        end
        return math.abs(a - b) <= (tolerance or 0) * math.max(math.abs(a), math.abs(b))
    end
    if type(a) ~= "table" or type(b) ~= "table" then
        return a == b
    end
    for k, v in pairs(a) do
        if not same(v, b[k], tolerance) then
            return false
        end
    end
    for k in pairs(b) do
        if a[k] == nil then
            return false
        end
    end
    return true
end

-- The same document in cjson's terms: cjson.null for null, and empty arrays as cjson's empty array.
local function toCjson(v)
    if v == Json.null then
        return cjson.null
    elseif type(v) ~= "table" then
        return v
    end
    local out = Json.isArray(v) and setmetatable({}, cjson.empty_array_mt) or {}
    for k, x in pairs(v) do
        out[k] = toCjson(x)
    end
    return out
end

-- Escapes every non-ASCII character as \uXXXX (surrogate pairs above U+FFFF), as Python's
-- json.dumps(ensure_ascii=True) does: an independent route into the decoder's \u handling.
local function asciiOnly(text)
    return (text:gsub("[\192-\247][\128-\191]*", function(seq)
        local b1 = seq:byte(1)
        local code
        if b1 >= 0xF0 then
            code = (b1 - 0xF0) * 262144 + (seq:byte(2) - 0x80) * 4096 + (seq:byte(3) - 0x80) * 64 + seq:byte(4) - 0x80
        elseif b1 >= 0xE0 then
            code = (b1 - 0xE0) * 4096 + (seq:byte(2) - 0x80) * 64 + seq:byte(3) - 0x80
        else
            code = (b1 - 0xC0) * 64 + seq:byte(2) - 0x80
        end
        if code < 0x10000 then
            return string.format("\\u%04X", code)
        end
        code = code - 0x10000
        return string.format("\\u%04x\\u%04x", 0xD800 + math.floor(code / 1024), 0xDC00 + code % 1024)
    end))
end

describe("Json", function()
    local seeds = {}
    for seed = 1, 300 do
        seeds[#seeds + 1] = seed
    end

    it("round-trips 300 random documents through its own encoder and decoder", function()
        for _, seed in ipairs(seeds) do
            math.randomseed(seed)
            local doc = randomValue(math.random, 0)
            local text = Json.encode(doc)
            assert.is_nil(text:find("\n"), "one line per message")
            assert.is_true(same(doc, Json.decode(text)), "seed " .. seed .. ": " .. text)
        end
    end)

    it("decodes lua-cjson's text of random documents to equal values, and cjson reads its text", function()
        cjson.encode_number_precision(14)
        for _, seed in ipairs(seeds) do
            math.randomseed(seed)
            local doc = randomValue(math.random, 0)
            local cjsonText = cjson.encode(toCjson(doc))
            assert.is_true(same(doc, Json.decode(cjsonText), 1e-12), "seed " .. seed .. ": " .. cjsonText)
            assert.is_true(same(doc, cjson.decode(Json.encode(doc)), 0), "seed " .. seed)
        end
    end)

    it("decodes \\u escapes, surrogate pairs included, to the same UTF-8", function()
        for _, seed in ipairs(seeds) do
            math.randomseed(seed)
            local doc = randomValue(math.random, 0)
            local escaped = asciiOnly(Json.encode(doc))
            assert.is_nil(escaped:find("[\128-\255]"))
            assert.is_true(same(doc, Json.decode(escaped)), "seed " .. seed .. ": " .. escaped)
        end
        assert.are.equal("\240\159\152\128", Json.decode('"\\ud83d\\ude00"'))
        assert.are.equal("/", Json.decode('"\\/"'))
    end)

    it("keeps arrays and objects apart, empty ones included", function()
        local doc = { a = Json.array(), b = Json.object(), c = { 1, 2 } }
        assert.are.equal('{"a":[],"b":{},"c":[1,2]}', Json.encode(doc))
        assert.are.equal("[[],{}]", Json.encode(Json.decode("[[],{}]")))
        assert.are.equal('{"1":true}', Json.encode({ ["1"] = true }))
    end)

    it("reads numbers with signs, fractions and exponents", function()
        assert.are.same({ 0, -0.5, 1e-7, 2.5e10, -3E+2, 12 }, Json.decode("[0,-0.5,1e-7,2.5e10,-3E+2,12]"))
        assert.are.equal(0.1, Json.decode(Json.encode(0.1)))
        for _, x in ipairs({ 2 ^ 53, -2 ^ 60, 1 / 3, 6.02214076e23, 5e-324 }) do
            assert.are.equal(x, Json.decode(Json.encode(x)))
        end
    end)

    it("reports malformed text with the byte position", function()
        local cases = {
            ["[1,]"] = "byte 4", ['{"a" 1}'] = "byte 6", ["01"] = "byte 2", ["1."] = "byte 1",
            ['"abc'] = "unterminated", ['"\\ud800"'] = "surrogate", ['"\\q"'] = "bad escape",
            ["[1 2]"] = "byte 4", [""] = "end of text", ["nul"] = "byte 1", ['"a\nb"'] = "control",
        }
        for text, expected in pairs(cases) do
            local value, message = Json.tryDecode(text)
            assert.is_nil(value, text)
            assert.truthy(message:find(expected, 1, true), text .. " -> " .. tostring(message))
        end
    end)

    it("refuses values JSON cannot hold", function()
        assert.has_error(function() Json.encode(0 / 0) end)
        assert.has_error(function() Json.encode(math.huge) end)
        assert.has_error(function() Json.encode(print) end)
        local loop = {}
        loop.self = loop
        assert.has_error(function() Json.encode(loop) end)
    end)
end)
