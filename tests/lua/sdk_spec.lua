-- The SDK stand-in enforces the SDK's rules the plug-in must follow (docs/lightroom-sdk.md), so a plug-in
-- that broke them would fail here as it would misbehave in Lightroom.
package.path = "tests/lua/support/?.lua;" .. package.path
local world = require "world"
local sdk = world.sdk
local socket = require "socket"

describe("the SDK stand-in", function()
    local catalog, photo

    before_each(function()
        world.fresh()
        catalog = sdk.catalog
        local path = world.tmp .. "/IMG_0001.dng"
        io.open(path, "wb"):close()
        photo = catalog:addExistingPhoto(path, { rating = 3 })
    end)

    it("refuses metadata keys the SDK does not have", function()
        assert.are.equal(3, photo:getRawMetadata("rating"))
        assert.has_error(function() photo:getRawMetadata("cameraModel") end)
        assert.has_error(function() photo:getFormattedMetadata("exposureBias") end)
        assert.has_error(function()
            sdk.runTask(function()
                catalog:withWriteAccessDo("x", function() photo:setRawMetadata("fileFormat", "DNG") end)
            end)
        end)
    end)

    it("refuses catalog writes outside a write gate, nested gates and yields inside one", function()
        assert.has_error(function() sdk.runTask(function() photo:setRawMetadata("rating", 1) end) end)
        local ok, err = pcall(sdk.runTask, function()
            catalog:withWriteAccessDo("outer", function()
                catalog:withWriteAccessDo("inner", function() end)
            end)
        end)
        assert.is_false(ok)
        assert.truthy(tostring(err):find("nested", 1, true))
        ok, err = pcall(sdk.runTask, function()
            catalog:withWriteAccessDo("gate", function() import("LrTasks").sleep(0.01) end)
        end)
        assert.is_false(ok)
        assert.truthy(tostring(err):find("write gate", 1, true))
    end)

    it("addPhoto throws for a missing file and stacks only within one folder", function()
        assert.has_error(function()
            sdk.runTask(function()
                catalog:withWriteAccessDo("add", function() catalog:addPhoto(world.tmp .. "/nope.dng") end)
            end)
        end)
        os.execute("mkdir -p " .. sdk.shellQuote(world.tmp .. "/other"))
        local elsewhere = world.tmp .. "/other/IMG_0001_hotpixels.dng"
        io.open(elsewhere, "wb"):close()
        assert.has_error(function()
            sdk.runTask(function()
                catalog:withWriteAccessDo("add", function() catalog:addPhoto(elsewhere, photo, "above") end)
            end)
        end)
    end)

    it("runs LrTasks.execute in the background: other tasks keep running while a process does", function()
        local ticks, status = 0, nil
        local LrTasks = import "LrTasks"
        LrTasks.startAsyncTask(function() status = LrTasks.execute("sleep 0.5; exit 7") end)
        LrTasks.startAsyncTask(function()
            while status == nil do
                ticks = ticks + 1
                LrTasks.sleep(0.02)
            end
        end)
        local started = socket.gettime()
        sdk.pump(function() return status ~= nil end, 10)
        assert.are.equal(7, status)
        assert.is_true(ticks > 5, "the other task ran " .. ticks .. " times")
        assert.is_true(socket.gettime() - started >= 0.45)
    end)

    it("forbids sleeping outside a task and yielding inside a socket callback", function()
        assert.has_error(function() import("LrTasks").sleep(0.01) end)
        local LrSocket = import "LrSocket"
        local port
        local controller = LrSocket.bind { port = 0, mode = "receive",
            onConnecting = function(_, p) port = p end,
            onMessage = function() import("LrTasks").yield() end }
        sdk.pump(function() return port ~= nil end, 5)
        local client = assert(socket.connect("127.0.0.1", port))
        client:send("hello\n")
        sdk.pump(function() return #sdk.state.callbackErrors > 0 end, 5)
        assert.truthy(sdk.state.callbackErrors[1]:find("cannot yield inside LrSocket onMessage", 1, true))
        client:close()
        controller:close()
        sdk.state.callbackErrors = {}
    end)

    it("a receive socket that timed out accepts nobody until reconnect(); send sockets refuse reconnect()",
        function()
            local LrSocket = import "LrSocket"
            local errors, ports, connected = {}, {}, false
            local controller = LrSocket.bind { port = 0, mode = "receive",
                onConnecting = function(_, p) ports[#ports + 1] = p end,
                onConnected = function() connected = true end,
                onError = function(_, err) errors[#errors + 1] = err end }
            sdk.pump(function() return #errors >= 1 end, 5)
            assert.are.same({ "timeout" }, errors)
            local client = assert(socket.connect("127.0.0.1", ports[1]))
            client:send("late\n")
            local t0 = socket.gettime()
            sdk.pump(function() return socket.gettime() - t0 > 0.8 end, 5)
            assert.is_false(connected, "a timed-out socket must not deliver before reconnect()")
            assert.are.same({ "timeout" }, errors, "one timeout, then silence until reconnect()")
            controller:reconnect()
            sdk.pump(function() return connected end, 5, "the connection after reconnect()")
            assert.are.equal(ports[1], ports[2], "announced again through onConnecting")
            client:close()
            controller:close()
            local sender = LrSocket.bind { port = 0, mode = "send" }
            assert.has_error(function() sender:reconnect() end)
            sender:close()
        end)

    it("isWritable answers for files only; volumeAttributes gives the free space", function()
        local LrFileUtils = import "LrFileUtils"
        assert.is_false(LrFileUtils.isWritable(world.tmp), "a folder, read literally: not 'a writable disk file'")
        assert.is_true(LrFileUtils.isWritable(world.tmp .. "/IMG_0001.dng"))
        local attrs = LrFileUtils.volumeAttributes(world.tmp)
        assert.is_true(attrs.fileSystemFreeSize > 0)
        sdk.markReadOnly(world.tmp)
        assert.is_false(LrFileUtils.copy(world.tmp .. "/IMG_0001.dng", world.tmp .. "/copy.dng"))
    end)

    it("gives an export's renditions only after doExportOnCurrentTask()", function()
        local LrExportSession = import "LrExportSession"
        local Exporter = sdk.requirePlugin("Exporter")
        local session = LrExportSession { photosToExport = { photo },
            exportSettings = Exporter.settings(world.tmp) }
        assert.has_error(function() sdk.runTask(function() for _ in session:renditions {} do end end) end)
    end)
end)
