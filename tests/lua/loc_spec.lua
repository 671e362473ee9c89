-- Every user-facing string goes through LOC (Loc.text with a $$$/HotPixels/ key), and none of them
-- tells a photographer about ./run.sh or a command-line flag.
package.path = "tests/lua/support/?.lua;" .. package.path
local lfs = require "lfs"

local root = (os.getenv("HOTPIXELS_ROOT") or lfs.currentdir()) .. "/hotpixel.lrdevplugin/"

local function sources()
    local out = {}
    for name in lfs.dir(root) do
        if name:match("%.lua$") and name ~= "Json.lua" then
            local f = assert(io.open(root .. name))
            out[name] = f:read("*a")
            f:close()
        end
    end
    return out
end

-- The English text of every Loc.text call: {key = english} (a call's literal pieces joined).
local function locTexts(text)
    local found = {}
    for key, rest in text:gmatch('Loc%.text%("([^"]+)",%s*(.-)%)') do
        local english = {}
        for piece in rest:gmatch('"((\\.|[^"\\])*)"') do
            english[#english + 1] = piece
        end
        found[#found + 1] = { key = key, english = table.concat(english) }
    end
    return found
end

describe("user-facing strings", function()
    it("go through LOC: no bare literal as a dialog title, button, message or progress caption", function()
        local offenders = {}
        local patterns = {
            '[%s{,](title%s*=%s*)"%a[^"]*"', '[%s{,](%a+Verb%s*=%s*)"%a[^"]*"', '(caption%s*=%s*)"%a[^"]*"',
            '(LrDialogs%.message%()%s*"', '(LrDialogs%.confirm%()%s*"', '(showWorkerError%()%s*"',
        }
        for name, text in pairs(sources()) do
            if name ~= "Info.lua" then -- Info.lua uses LOC itself (its loader provides LOC)
                local n = 0
                for line in (text .. "\n"):gmatch("([^\n]*)\n") do
                    n = n + 1
                    if not line:match("^%s*%-%-") then
                        for _, pattern in ipairs(patterns) do
                            if line:match(pattern) then
                                offenders[#offenders + 1] = name .. ":" .. n .. ": " .. line
                            end
                        end
                    end
                end
            end
        end
        assert.are.same({}, offenders)
    end)

    it("each LOC key means one English text, and no text mentions ./run.sh or a command-line flag", function()
        local byKey, problems = {}, {}
        for name, text in pairs(sources()) do
            for _, t in ipairs(locTexts(text)) do
                if byKey[t.key] and byKey[t.key] ~= t.english then
                    problems[#problems + 1] = name .. ": key " .. t.key .. " has two texts"
                end
                byKey[t.key] = t.english
                if t.english:find("run.sh", 1, true) or t.english:find("run.bat", 1, true)
                    or t.english:find("%-%-%a") then
                    problems[#problems + 1] = name .. ": " .. t.english
                end
            end
        end
        assert.is_true(next(byKey) ~= nil)
        assert.are.same({}, problems)
    end)

    it("Loc.text fills ^1, ^2 … after translation, as LOC does", function()
        local sdk = require "sdk"
        sdk.reset()
        local Loc = sdk.requirePlugin("Loc")
        assert.are.equal("2 of 5 photos", Loc.text("Test/Of", "^1 of ^2 photos", 2, 5))
    end)
end)
