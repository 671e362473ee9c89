-- The Plug-in Manager section, progress and cancel over the wire, and a clean worker stop when the
-- plug-in or Lightroom shuts down; all with the real worker.
package.path = "tests/lua/support/?.lua;" .. package.path
local world = require "world"
local sdk = world.sdk
local itWithWorker = world.withWorker(it, pending)

local function runPluginScript(name)
    local chunk = assert(loadfile(sdk.state.pluginPath .. "/" .. name))
    return chunk()
end

describe("worker lifecycle", function()
    after_each(function()
        world.stopWorker()
        assert.are.same({}, sdk.state and sdk.state.taskErrors or {})
        assert.are.same({}, sdk.state and sdk.state.callbackErrors or {})
    end)

    itWithWorker("the Plug-in Manager starts no worker; Restart starts one and shows its version, device, model",
        function()
        world.fresh()
        local PluginManager = runPluginScript("PluginManager.lua")
        local props
        sdk.runTask(function()
            import("LrFunctionContext").callWithContext("pm", function(ctx)
                props = import("LrBinding").makePropertyTable(ctx)
            end)
        end)
        PluginManager.startDialog(props) -- not in a task, as in Lightroom
        local execs = sdk.state.execCount
        sdk.pump(nil, 2)
        assert.are.equal(execs, sdk.state.execCount, "opening the Plug-in Manager launched nothing")
        local WorkerClient = require "WorkerClient"
        assert.is_false(WorkerClient.sharedIsRunning())
        assert.truthy(props.workerStatus:find("not started", 1, true), props.workerStatus)
        local function restart()
            sdk.view.press(sdk.view.withTitle(PluginManager.sectionsForTopOfDialog(import("LrView").osFactory(),
                props)[1], "Restart Worker", "push_button"))
        end
        restart()
        sdk.pump(function() return props.workerVersion ~= "" end, 60, "the status")
        assert.truthy(props.workerStatus:find("running (pid", 1, true), props.workerStatus)
        assert.truthy(props.workerVersion:find("(protocol 1)", 1, true))
        assert.truthy(props.workerDevice == "cpu" or props.workerDevice:find("cuda") or props.workerDevice == "mps")
        assert.truthy(props.workerModel ~= "")
        assert.truthy(props.workerLog:find("hotpixels-worker.log", 1, true))
        assert.is_nil(props.workerModel:find("loading…", 1, true), props.workerModel)
        local before = WorkerClient.shared():pid()
        restart()
        sdk.pump(function()
            local pid = WorkerClient.shared():pid()
            return pid and pid ~= before and props.workerStatus:find("running", 1, true)
        end, 60, "the restart")
        sdk.pump(function() return not world.alive(before) end, 20, "the old worker to exit")
        PluginManager.endDialog(props)
    end)

    itWithWorker("$/progress drives the progress scope and cancelling it sends $/cancelRequest", function()
        world.fresh()
        local exe = world.wrapper(world.tmp .. "/worker-with-test-methods", sdk.shellQuote((world.realWorker())),
            "export HOTPIXELS_WORKER_TEST_METHODS=1")
        import("LrPrefs").prefsForPlugin().workerPath = exe
        local WorkerClient = require "WorkerClient"
        local result, err, scope
        sdk.onProgress(function(s, what, done)
            if what == "portion" and done >= 3 then
                s:cancel()
            end
        end)
        sdk.runTask(function()
            scope = import("LrProgressScope") { title = "sleeping" }
            result, err = WorkerClient.call("test.sleep", { seconds = 20, steps = 40 }, { scope = scope })
        end, 60)
        assert.is_nil(result)
        assert.is_true(err.cancelled)
        assert.are.equal(-32800, err.code)
        assert.is_true(#scope.portions >= 3)
        -- progress is also resent while a step runs (at least every 0.5 s), so on a busy machine a
        -- step can be shown twice: what matters is that 3 of 40 steps were shown before the cancel
        local reached = false
        for _, portion in ipairs(scope.portions) do
            reached = reached or (portion[1] >= 3 and portion[2] == 40)
        end
        assert.is_true(reached, "the scope showed 3 of 40 steps before the cancel")
        assert.truthy(scope.captions[1]:find("step", 1, true) or scope.captions[#scope.captions]:find("step", 1, true))
        -- the worker is still there for the next request
        local hello = sdk.runTask(function() return WorkerClient.call("worker.hello", {}) end)
        assert.are.equal(1, hello.protocol)
    end)

    itWithWorker("Lightroom quitting stops the worker with worker.shutdown and closes the sockets", function()
        world.fresh()
        local WorkerClient = require "WorkerClient"
        sdk.runTask(function() assert(WorkerClient.shared():ensureStarted()) end)
        local pid = WorkerClient.shared():pid()
        local shutdownApp = runPluginScript("ShutdownApp.lua")
        local done, progress = false, nil
        shutdownApp.LrShutdownFunction(function() done = true end, function(p) progress = p end)
        sdk.pump(function() return done end, 30, "the shutdown function")
        assert.are.equal(1, progress)
        sdk.pump(function() return not world.alive(pid) end, 20, "the worker to exit")
        sdk.pump(function() return sdk.openSockets() == 0 end, 5, "the sockets to close")
        local statusFile = sdk.state.root .. "/exec-1.status"
        sdk.pump(function() return io.open(statusFile) ~= nil end, 10, "the exit status")
        local status = io.open(statusFile):read("*l")
        assert.are.equal("0", status, "the worker exited cleanly (worker.shutdown), not killed")
    end)

    itWithWorker("disabling or reloading the plug-in stops the worker without waiting", function()
        world.fresh()
        local WorkerClient = require "WorkerClient"
        sdk.runTask(function() assert(WorkerClient.shared():ensureStarted()) end)
        local pid = WorkerClient.shared():pid()
        runPluginScript("Shutdown.lua") -- LrShutdownPlugin: a plain script, maybe not in a task
        sdk.pump(function() return not world.alive(pid) end, 20, "the worker to exit")
        assert.is_false(WorkerClient.sharedIsRunning())
        -- Init.lua on a reload stops a worker left by the previous load
        sdk.runTask(function() assert(WorkerClient.shared():ensureStarted()) end)
        local second = WorkerClient.shared():pid()
        runPluginScript("Init.lua")
        sdk.pump(function() return not world.alive(second) end, 20, "the old load's worker to exit")
    end)
end)
