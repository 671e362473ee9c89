--[[----------------------------------------------------------------------------
Init.lua (LrInitPlugin): runs when the plug-in loads or reloads. A reload
discards all previous globals, so a worker left by the previous load is stopped
here (its sockets belong to the old load). The worker itself starts on first use,
so loading the plug-in stays instant.
------------------------------------------------------------------------------]]

local Log = require "Log"
local Settings = require "Settings"
local WorkerClient = require "WorkerClient"

Settings.prefs() -- fill in defaults for new preferences
if WorkerClient.sharedIsRunning() then
    WorkerClient.shared():stopNow()
    WorkerClient.resetShared()
end
Log.info("HotPixels plug-in loaded from", _PLUGIN.path)
