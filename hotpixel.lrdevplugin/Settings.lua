--[[----------------------------------------------------------------------------
Settings.lua: the plug-in's preferences (LrPrefs) with their defaults.
------------------------------------------------------------------------------]]

local LrPrefs = import "LrPrefs"

local Settings = {}

Settings.defaults = {
    libraryFolder = nil,          -- profile library folder; nil: the worker's default
    sensitivity = 0.5,            -- residual detection cut, 0..1
    suffix = "_hotpixels",        -- added to the corrected file's name
    stageDark = true,             -- stage 1: subtract the scaled dark model
    stageHot = true,              -- stage 2: interpolate known hot pixels
    stageResidual = true,         -- stage 3: find residual hot pixels
    batchEvidence = true,         -- stage 3: compare the frames of a series first (image.scanBatch)
    trackedMount = false,         -- the series was shot on a tracking mount (stars stay on their pixels)
    stackWithOriginal = true,     -- stack the result above its source
    largeSelection = 200,         -- confirm before a batch larger than this many photos
    workerPath = nil,             -- advanced: a worker executable to use instead of the bundled one
    startTimeoutS = 60,           -- a first start under antivirus scanning can take this long
    requestIdleTimeoutS = 180,    -- a request with no reply or progress for this long has failed
    heartbeatS = 20,              -- idle worker.hello period (a send socket may not notice a dead peer)
}

--- The persistent preference table, with defaults filled in for unset keys.
function Settings.prefs()
    local prefs = LrPrefs.prefsForPlugin()
    for key, value in pairs(Settings.defaults) do
        if prefs[key] == nil then
            prefs[key] = value
        end
    end
    return prefs
end

--- The value of one preference (default when unset).
function Settings.get(key)
    local value = LrPrefs.prefsForPlugin()[key]
    if value == nil then
        return Settings.defaults[key]
    end
    return value
end

return Settings
