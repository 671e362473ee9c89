--[[----------------------------------------------------------------------------
Shutdown.lua (LrShutdownPlugin): the plug-in is disabled, removed or reloaded.
Stop the worker cleanly: `worker.shutdown`, then close both sockets (the worker
also exits on its own when a socket closes). This script may not run in a task,
so it never waits.
------------------------------------------------------------------------------]]

local Log = require "Log"
local WorkerClient = require "WorkerClient"

if WorkerClient.sharedIsRunning() then
    Log.info("plug-in shutdown: stopping the worker")
    WorkerClient.shared():stopNow()
end
WorkerClient.resetShared()
