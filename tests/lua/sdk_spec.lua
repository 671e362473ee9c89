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

    it("reports the receive socket's periodic timeout while nobody is connected, and forbids reconnect()", function()
        local LrSocket = import "LrSocket"
        local errors = {}
        local controller = LrSocket.bind { port = 0, mode = "receive",
            onError = function(_, err) errors[#errors + 1] = err end }
        sdk.pump(function() return #errors >= 2 end, 5)
        assert.are.same({ "timeout", "timeout" }, { errors[1], errors[2] })
        assert.has_error(function() controller:reconnect() end)
        controller:close()
    end)
end)
