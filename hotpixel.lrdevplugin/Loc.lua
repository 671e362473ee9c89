--[[----------------------------------------------------------------------------
Loc.lua: every user-facing string goes through Lightroom's LOC with a key under
$$$/HotPixels/ (so a translation file can replace it). `^1`, `^2`… are filled
in after translation, as LOC does for its own arguments.
------------------------------------------------------------------------------]]

local Loc = {}

--- LOC("$$$/HotPixels/<key>=<english>") with ^1, ^2… replaced by the extra arguments.
function Loc.text(key, english, ...)
    local text = LOC("$$$/HotPixels/" .. key .. "=" .. english)
    local args = { ... }
    return (text:gsub("%^(%d)", function(n)
        local v = args[tonumber(n)]
        return v == nil and "" or tostring(v)
    end))
end

return Loc
