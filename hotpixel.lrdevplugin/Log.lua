--[[----------------------------------------------------------------------------
Log.lua: the plug-in's log (LrLogger "HotPixels", written to a file) and where
the logs live.

Lightroom Classic writes a logger's file to Documents/LrClassicLogs/<name>.log;
the worker's own log goes next to it (hotpixels-worker.log), so one folder
holds everything a bug report needs.
------------------------------------------------------------------------------]]

local LrLogger = import "LrLogger"
local LrPathUtils = import "LrPathUtils"
local LrFileUtils = import "LrFileUtils"

local logger = LrLogger("HotPixels")
logger:enable("logfile")

local Log = {}

local function line(...)
    local parts = {}
    for i = 1, select("#", ...) do
        parts[#parts + 1] = tostring((select(i, ...)))
    end
    return table.concat(parts, " ")
end

function Log.info(...)
    logger:info(line(...))
end

function Log.warn(...)
    logger:warn(line(...))
end

function Log.error(...)
    logger:error(line(...))
end

function Log.trace(...)
    logger:trace(line(...))
end

--- The folder that holds the plug-in's and the worker's logs (created on demand).
function Log.folder()
    local dir = LrPathUtils.child(LrPathUtils.getStandardFilePath("documents"), "LrClassicLogs")
    if not LrFileUtils.exists(dir) then
        LrFileUtils.createAllDirectories(dir)
    end
    return dir
end

--- The plug-in's log file (Lightroom writes it).
function Log.pluginLogPath()
    return LrPathUtils.child(Log.folder(), "HotPixels.log")
end

--- The worker's log file (the worker appends to it; passed as --log).
function Log.workerLogPath()
    return LrPathUtils.child(Log.folder(), "hotpixels-worker.log")
end

return Log
