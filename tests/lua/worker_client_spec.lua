-- The worker client over real loopback sockets with a real worker process.
package.path = "tests/lua/support/?.lua;" .. package.path
local world = require "world"
local sdk = world.sdk
local lfs = require "lfs"
local itWithWorker = world.withWorker(it, pending)

describe("WorkerClient", function()
    after_each(function()
        world.stopWorker()
        assert.are.same({}, sdk.state and sdk.state.taskErrors or {})
        assert.are.same({}, sdk.state and sdk.state.callbackErrors or {})
    end)

    describe("command line", function()
        before_each(function() world.fresh() end)

        it("quotes paths with spaces, quotes and non-ASCII for a POSIX shell", function()
            local WorkerClient = require "WorkerClient"
            local line = WorkerClient.commandLine({ "/Users/Ann O'Neil/Bilder größer/hotpixels-worker", "--connect",
                "5001", "5002", "--log", "/tmp/a b/log.txt" }, false)
            assert.are.equal("'/Users/Ann O'\\''Neil/Bilder größer/hotpixels-worker' --connect 5001 5002 --log " ..
                "'/tmp/a b/log.txt'", line)
        end)

        it("wraps a Windows command line in an extra pair of quotes, each path quoted", function()
            local WorkerClient = require "WorkerClient"
            local exe = [[C:\Program Files\Adobe\hotpixel.lrplugin\bin\hotpixels-worker.exe]]
            local line = WorkerClient.commandLine({ exe,
                "--connect", "5001", "5002", "--log", [[C:\Users\Zoë\Documents\LrClassicLogs\]] }, true)
            assert.are.equal([[""C:\Program Files\Adobe\hotpixel.lrplugin\bin\hotpixels-worker.exe" --connect 5001 ]] ..
                [[5002 --log "C:\Users\Zoë\Documents\LrClassicLogs\\""]], line)
        end)

        it("explains exit statuses a photographer can act on", function()
            local WorkerClient = require "WorkerClient"
            assert.truthy(WorkerClient.describeExit(127, false):find("not found"))
            assert.truthy(WorkerClient.describeExit(137, false):find("signal 9"))
            -- raw wait statuses, as a system() call returns them on macOS
            assert.truthy(WorkerClient.describeExit(32256, false):find("not executable"), "126 << 8")
            assert.truthy(WorkerClient.describeExit(32512, false):find("not found"), "127 << 8")
            assert.truthy(WorkerClient.describeExit(768, false):find("exit status 3", 1, true))
            assert.truthy(WorkerClient.describeExit(9009, true):find("not found"), "cmd.exe: no such program")
            for _, status in ipairs({ 32256, 32512, 768, 137 }) do
                assert.is_nil(WorkerClient.describeExit(status, false):find(tostring(status), 1, true),
                    "no raw status in the message: " .. status)
            end
        end)

        it("makes a fresh 32-digit token for every session", function()
            local WorkerClient = require "WorkerClient"
            local a, b = WorkerClient.newToken(), WorkerClient.newToken()
            assert.truthy(a:match("^%x+$"))
            assert.are.equal(32, #a)
            assert.are_not.equal(a, b)
        end)
    end)

    describe("the development fallback", function()
        it("finds the worker through PluginPath.txt when no bin/ and no preference are set", function()
            world.fresh()
            import("LrPrefs").prefsForPlugin().workerPath = ""
            local plugin = world.tmp .. "/plugin.lrdevplugin"
            lfs.mkdir(plugin)
            local dev = world.tmp .. "/checkout"
            lfs.mkdir(dev)
            lfs.mkdir(dev .. "/.venv")
            lfs.mkdir(dev .. "/.venv/bin")
            world.wrapper(dev .. "/.venv/bin/hotpixels-worker", "true")
            local f = assert(io.open(plugin .. "/PluginPath.txt", "w"))
            f:write(dev, "\n")
            f:close()
            _PLUGIN.path = plugin
            local WorkerClient = require "WorkerClient"
            local argv, source = WorkerClient.findWorker()
            assert.are.same({ dev .. "/.venv/bin/hotpixels-worker" }, argv)
            assert.truthy(source:find("development install", 1, true))
            os.remove(dev .. "/.venv/bin/hotpixels-worker")
            world.wrapper(dev .. "/run.sh", "true")
            assert.are.same({ dev .. "/run.sh", "serve" }, (WorkerClient.findWorker()))
            os.remove(dev .. "/run.sh")
            local none, why = WorkerClient.findWorker()
            assert.is_nil(none)
            assert.truthy(why:find("Reinstall the plug-in", 1, true))
        end)

        it("prefers the frozen worker in bin/<os>-<arch>/", function()
            world.fresh()
            import("LrPrefs").prefsForPlugin().workerPath = ""
            local plugin = world.tmp .. "/plugin.lrdevplugin"
            for _, d in ipairs({ "", "/bin", "/bin/macos-arm64", "/bin/macos-arm64/hotpixels-worker" }) do
                lfs.mkdir(plugin .. d)
            end
            world.wrapper(plugin .. "/bin/macos-arm64/hotpixels-worker/hotpixels-worker", "true")
            _PLUGIN.path = plugin
            local WorkerClient = require "WorkerClient"
            local argv, source = WorkerClient.findWorker()
            assert.are.same({ plugin .. "/bin/macos-arm64/hotpixels-worker/hotpixels-worker" }, argv)
            assert.are.equal("the bundled worker", source)
        end)
    end)

    describe("with the real worker", function()
        itWithWorker("starts it from a folder with spaces and non-ASCII, verifies the token and protocol",
            function()
                local tmp = world.fresh()
                local odd = tmp .. "/Zoë's wörker dir"
                lfs.mkdir(odd)
                local exe = world.wrapper(odd .. "/hotpixels-worker", sdk.shellQuote((world.realWorker())))
                import("LrPrefs").prefsForPlugin().workerPath = exe
                local WorkerClient = require "WorkerClient"
                local client = WorkerClient.shared()
                local hello, err = world.task(function() return client:ensureStarted() end)
                assert.is_nil(err)
                assert.are.equal(1, hello.protocol)
                assert.truthy(hello.device)
                assert.is_true(world.alive(client:pid()))
                assert.truthy(sdk.state.lastCommand:find("Zoë'\\''s wörker dir", 1, true))
                -- a second request reuses the same worker
                local again = world.task(function() return client:request("worker.hello", { protocol = 1 }) end)
                assert.are.equal(hello.pid, again.pid)
                local pid = client:pid()
                world.task(function() client:stop() end)
                sdk.pump(function() return not world.alive(pid) end, 20, "the worker to exit")
            end)

        itWithWorker("restarts a killed worker once, then explains what failed", function()
            world.fresh()
            local WorkerClient = require "WorkerClient"
            local client = WorkerClient.shared()
            world.task(function() assert(client:ensureStarted()) end)
            local first = client:pid()
            os.execute("kill -9 " .. first)
            sdk.pump(function() return not client:isRunning() end, 20, "the client to notice")
            local hello, err = world.task(function() return client:request("worker.hello", { protocol = 1 }) end)
            assert.is_nil(err)
            assert.are_not.equal(first, hello.pid)
            os.execute("kill -9 " .. hello.pid)
            sdk.pump(function() return not client:isRunning() end, 20, "the client to notice")
            local none, err2 = world.task(function() return client:request("worker.hello", { protocol = 1 }) end)
            assert.is_nil(none)
            assert.are.equal("worker_failed", err2.name)
            assert.truthy(err2.message:find("signal 9", 1, true), err2.message)
            assert.truthy(err2.message:find("Restart worker", 1, true))
            -- the Plug-in Manager's button starts afresh
            local again = world.task(function() return client:restart() end)
            assert.are.equal(1, again.protocol)
        end)

        itWithWorker("works whether or not onMessage strips the newline", function()
            world.fresh({ keepNewline = true })
            local WorkerClient = require "WorkerClient"
            local hello, err = world.task(function() return WorkerClient.shared():ensureStarted() end)
            assert.is_nil(err)
            assert.are.equal(1, hello.protocol)
        end)

        itWithWorker("two tasks asking at once share one worker", function()
            world.fresh()
            local WorkerClient = require "WorkerClient"
            local client = WorkerClient.shared()
            local LrTasks = import "LrTasks"
            local pids = {}
            for i = 1, 2 do
                LrTasks.startAsyncTask(function()
                    local hello = client:request("worker.hello", { protocol = 1 })
                    pids[i] = hello and hello.pid or false
                end)
            end
            sdk.pump(function() return pids[1] ~= nil and pids[2] ~= nil end, 60, "both answers")
            assert.truthy(pids[1])
            assert.are.equal(pids[1], pids[2])
            assert.are.equal(1, client.sessions)
        end)

        itWithWorker("heartbeats while idle and notices a worker that stopped answering", function()
            world.fresh({ heartbeatS = 1 })
            local WorkerClient = require "WorkerClient"
            local client = WorkerClient.shared()
            world.task(function() assert(client:ensureStarted()) end)
            local pid = client:pid()
            os.execute("kill -STOP " .. pid) -- alive but silent: only the heartbeat can tell
            client.requestIdleTimeoutS = 3
            sdk.pump(function() return not client:isRunning() end, 30, "the heartbeat to give up")
            os.execute("kill -CONT " .. pid)
            assert.truthy(client.lastFailure:find("heartbeat", 1, true))
            sdk.pump(function() return not world.alive(pid) end, 20, "the worker to exit once its sockets closed")
        end)

        itWithWorker("tolerates the receive socket's periodic timeout errors while unconnected", function()
            world.fresh({ socketTimeoutS = 0.05 })
            local tmp = world.tmp
            local slow = world.wrapper(tmp .. "/slow-worker", sdk.shellQuote((world.realWorker())), "sleep 1")
            import("LrPrefs").prefsForPlugin().workerPath = slow
            local WorkerClient = require "WorkerClient"
            local hello = world.task(function() return WorkerClient.shared():ensureStarted() end)
            assert.are.equal(1, hello.protocol)
        end)
    end)

    describe("a slow first start", function()
        it("connects a worker that needs 12 s to start: the receive socket's timeout is followed by reconnect()",
            function()
                -- Lightroom's receive socket times out after about 10 s with nobody connected and then needs
                -- reconnect(); an unsigned worker scanned by an antivirus can take longer than that to start
                world.fresh({ socketTimeoutS = 10 })
                local slow = world.wrapper(world.tmp .. "/slow-worker", "lua5.1 " ..
                    sdk.shellQuote(world.root .. "/tests/lua/support/fake_worker.lua") .. " series", "sleep 12")
                import("LrPrefs").prefsForPlugin().workerPath = slow
                local WorkerClient = require "WorkerClient"
                local client = WorkerClient.new({ startTimeoutS = 40 })
                local started = require("socket").gettime()
                local hello, err = world.task(function() return client:ensureStarted() end, 60)
                assert.is_nil(err)
                assert.are.equal(1, hello.protocol)
                local took = require("socket").gettime() - started
                assert.is_true(took >= 12 and took < 30, "connected after " .. took .. " s")
                assert.is_true(client.session.recvReconnects >= 1, "reconnect() was called after the timeout")
                world.task(function() client:stop(5) end)
            end)

        it("says so in words when the worker program is not executable", function()
            world.fresh()
            local notExecutable = world.tmp .. "/hotpixels-worker"
            local f = assert(io.open(notExecutable, "w"))
            f:write("#!/bin/sh\nexit 0\n")
            f:close()
            import("LrPrefs").prefsForPlugin().workerPath = notExecutable
            local WorkerClient = require "WorkerClient"
            local client = WorkerClient.new({ startTimeoutS = 10 })
            local hello, err = world.task(function() return client:ensureStarted() end)
            assert.is_nil(hello)
            assert.truthy(err.message:find("not executable", 1, true), err.message)
        end)
    end)

    describe("with a misbehaving worker", function()
        local function start(mode)
            world.fresh({ workerPath = world.fakeWorker(mode) })
            local WorkerClient = require "WorkerClient"
            local client = WorkerClient.new({ startTimeoutS = 3 })
            local hello, err = world.task(function() return client:ensureStarted() end)
            return client, hello, err
        end

        it("closes both sockets when the first message carries the wrong token", function()
            local client, hello, err = start("wrong-token")
            assert.is_nil(hello)
            assert.are.equal("worker_token", err.name)
            assert.is_false(client:isRunning())
            sdk.pump(nil, 5)
            assert.are.equal(0, sdk.openSockets())
        end)

        it("refuses a worker that speaks another protocol, with a clear message", function()
            local _, hello, err = start("protocol-2")
            assert.is_nil(hello)
            assert.are.equal("worker_protocol", err.name)
            assert.truthy(err.message:find("protocol 2", 1, true))
            assert.truthy(err.message:find("reinstall", 1, true))
        end)

        it("says how the worker ended when it exits before connecting", function()
            local _, hello, err = start("exit-3")
            assert.is_nil(hello)
            assert.truthy(err.message:find("exit status 3", 1, true), err.message)
        end)

        it("gives up on a worker that never answers worker.hello", function()
            local _, hello, err = start("silent")
            assert.is_nil(hello)
            assert.truthy(err.message:find("did not answer", 1, true), err.message)
        end)
    end)
end)
