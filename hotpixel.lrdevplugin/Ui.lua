--[[----------------------------------------------------------------------------
Ui.lua: small helpers the dialogs share: formatting, pictures, error display.
------------------------------------------------------------------------------]]

local LrDialogs = import "LrDialogs"
local LrFileUtils = import "LrFileUtils"
local LrTasks = import "LrTasks"

local Json = require "Json"
local Loc = require "Loc"
local Log = require "Log"

local Ui = {}

--- A JSON value or nil (Json.null becomes nil).
function Ui.value(v)
    if v == Json.null then
        return nil
    end
    return v
end

--- "1/250 s", "2.5 s", "120 s" from seconds; "?" when unknown.
function Ui.exposure(seconds)
    seconds = Ui.value(seconds)
    if type(seconds) ~= "number" or seconds <= 0 then
        return "?"
    end
    if seconds < 0.4 then
        return string.format("1/%d s", math.floor(1 / seconds + 0.5))
    end
    if seconds % 1 == 0 then
        return string.format("%d s", seconds)
    end
    return string.format("%.1f s", seconds)
end

--- "ISO 1600", or "ISO ?" when unknown.
function Ui.iso(iso)
    iso = Ui.value(iso)
    return iso and string.format("ISO %d", iso) or "ISO ?"
end

--- "21.5 °C", or "temperature unknown".
function Ui.temperature(celsius)
    celsius = Ui.value(celsius)
    if type(celsius) ~= "number" then
        return Loc.text("Ui/1", "temperature unknown")
    end
    return string.format("%.1f °C", celsius)
end

--- A picture's file path from a worker value (a path, or a table with a path), when the file exists.
function Ui.picturePath(value)
    value = Ui.value(value)
    if type(value) == "table" then
        value = Ui.value(value.path) or Ui.value(value.png)
    end
    if type(value) == "string" and LrFileUtils.exists(value) == "file" then
        return value
    end
    return nil
end

Ui.CHART_W_PX, Ui.CHART_H_PX = 540, 270 -- the worker's profile charts (profiles/pictures.py CHART_SIZE)
Ui.CHART_KEYS = { { "hot_map", "hot_per_frame" }, { "temperature_per_frame", "excess_histogram" } }

--- A profile's four charts laid out 2 x 2 (1088 x 548 px, so the dialog fits a 1366 x 768 screen; each
-- chart carries its own title, axes, values and units); nil when the profile has none.
function Ui.chartGrid(f, pictures)
    local rows, any = { spacing = 8 }, false
    for _, keys in ipairs(Ui.CHART_KEYS) do
        local row = { spacing = 8 }
        for _, key in ipairs(keys) do
            local path = Ui.picturePath((pictures or {})[key])
            if path then
                row[#row + 1] = f:picture { value = path, width = Ui.CHART_W_PX, height = Ui.CHART_H_PX }
                any = true
            end
        end
        rows[#rows + 1] = f:row(row)
    end
    return any and f:column(rows) or nil
end

--- Shows a worker error to the user (and logs it).
function Ui.showWorkerError(what, err)
    local message = err and err.message or tostring(err)
    Log.error(what, message)
    LrDialogs.message(what, message, "critical")
end

--- Runs `fn(context)` and turns an unexpected failure into one message (and a log line) instead of
-- a script error; returns fn's result, or nil after a failure.
function Ui.guard(context, title, fn)
    local ok, result = LrTasks.pcall(fn, context)
    if ok then
        return result
    end
    Log.error(title, "failed:", result)
    LrDialogs.message(title, Loc.text("Ui/2", "Something unexpected went wrong: ") .. tostring(result) ..
        Loc.text("Ui/3", "\nThe log (HotPixels.log in Documents/LrClassicLogs) has the details."), "critical")
    return nil
end

--- "3 photos", "1 photo".
function Ui.count(n, noun, plural)
    if n == 1 then
        return "1 " .. noun
    end
    return string.format("%d %s", n, plural or (noun .. "s"))
end

return Ui
