--[[----------------------------------------------------------------------------
ShutdownApp.lua (LrShutdownApp): Lightroom is quitting. Stop the worker with
`worker.shutdown` (waiting up to a few seconds for its reply), close the
sockets, report progress, then call doneFunction.
------------------------------------------------------------------------------]]

local LrTasks = import "LrTasks"

local Log = require "Log"
local WorkerClient = require "WorkerClient"

return {
    LrShutdownFunction = function(doneFunction, progressFunction)
        LrTasks.startAsyncTask(function()
            local ok, err = LrTasks.pcall(function()
                if WorkerClient.sharedIsRunning() then
                    Log.info("Lightroom is quitting: stopping the worker")
                    WorkerClient.shared():stop(5)
                end
            end)
            if not ok then
                Log.error("stopping the worker failed:", err)
            end
            WorkerClient.resetShared()
            progressFunction(1)
            doneFunction()
        end, "HotPixels shutdown")
    end,
}
