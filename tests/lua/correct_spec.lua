-- "Correct Hot Pixels…" end to end: the plug-in's dialog code, the SDK stand-in, the real worker.
package.path = "tests/lua/support/?.lua;" .. package.path
local world = require "world"
local sdk = world.sdk
local lfs = require "lfs"
local itWithWorker = world.withWorker(it, pending)

local function noTempLeftovers(dir)
    for _, name in ipairs(world.listDir(dir)) do
        assert.is_nil(name:find("%.tmp") or name:find("%.partial"), "leftover " .. name)
    end
end

describe("Correct Hot Pixels…", function()
    local CorrectDialog

    before_each(function()
        world.fresh()
        CorrectDialog = require "CorrectDialog"
    end)

    after_each(function()
        world.stopWorker()
        assert.are.same({}, sdk.state and sdk.state.taskErrors or {})
        assert.are.same({}, sdk.state and sdk.state.callbackErrors or {})
    end)

    itWithWorker("writes a corrected DNG beside a simulated night DNG and stacks it above, metadata copied",
        function()
            local sim = world.simulate(11)
            world.profile(sim, "SimCam night")
            local folder = sim.dir .. "/Nächte am Sée (2026)" -- spaces and non-ASCII on the way to the worker
            assert(os.rename(sim.dir .. "/lights", folder))
            local light = folder .. "/light_0001.dng"
            local before = world.read(light)
            local photo = sdk.catalog:addExistingPhoto(light, { rating = 4, colorNameForLabel = "red",
                pickStatus = 1, keywords = { "night", "Milky Way" },
                develop = { Exposure2012 = 0.35, Temperature = 4200, EnableLensCorrections = true } })
            sdk.catalog:select({ photo })
            local seen = world.answerCorrectDialog({ stageResidual = false })

            local summary = world.runCommand(CorrectDialog)

            assert.are.equal(1, #summary.corrected, summary.failed[1] and summary.failed[1].failure)
            local group = seen.dialog.props.profile_1
            assert.are.equal("SimCam night", group, "the profile was auto-matched and pre-selected")
            assert.truthy(seen.dialog.props.profile_1_why:find("ISO 1600", 1, true), seen.dialog.props.profile_1_why)
            local output = folder .. "/light_0001_hotpixels.dng"
            assert.are.equal("file", lfs.attributes(output, "mode"))
            assert.are.equal(before, world.read(light), "the source DNG is never modified")
            local added = sdk.catalog.added[1]
            assert.are.equal(output, added:getRawMetadata("path"))
            assert.are.equal(photo, added.stackedWith)
            assert.are.equal("above", added.stackPosition)
            assert.are.equal(1, added:getRawMetadata("stackPositionInFolder"))
            assert.are.equal(2, photo:getRawMetadata("stackPositionInFolder"))
            assert.are.equal(4, added:getRawMetadata("rating"))
            assert.are.equal("red", added:getRawMetadata("colorNameForLabel"))
            assert.are.equal(1, added:getRawMetadata("pickStatus"))
            local names = {}
            for _, kw in ipairs(added:getRawMetadata("keywords")) do
                names[#names + 1] = kw:getName()
            end
            assert.are.same({ "night", "Milky Way" }, names)
            assert.are.same(photo:getDevelopSettings(), added:getDevelopSettings())
            -- the summary shows counts and the before/after crop
            local pictures = {}
            for _, node in ipairs(sdk.view.bound(seen.summary.contents, "picture", "value", "page")) do
                pictures[#pictures + 1] = node.value.transform(1) -- page 1: the first photo's crops
            end
            assert.are.equal(2, #pictures)
            assert.truthy(pictures[1]:find("before", 1, true))
            assert.truthy(pictures[2]:find("after", 1, true))
            assert.truthy(sdk.view.withTitle(seen.summary.contents, "Corrected: 1"))
            noTempLeftovers(folder)
        end)

    itWithWorker("exports a non-DNG raw as DNG to a temp folder, corrects it into the source's folder", function()
        local sim = world.simulate(11)
        world.profile(sim, "SimCam night")
        local raw = sim.dir .. "/lights/IMG_0042.NEF"
        assert(os.rename(sim.lights[2], raw)) -- a DNG's bytes under a raw name: the stand-in "converts" by copy
        local photo = sdk.catalog:addExistingPhoto(raw, { fileFormat = "RAW", make = "HotPixels",
            model = "SimCam Mk1", serial = "SIM0000000379", iso = 1600, exposure = 30 })
        sdk.catalog:select({ photo })
        world.answerCorrectDialog({ stageResidual = false })

        local summary = world.runCommand(CorrectDialog)

        assert.are.equal(1, #summary.corrected, summary.failed[1] and summary.failed[1].failure)
        local output = sim.dir .. "/lights/IMG_0042_hotpixels.dng"
        assert.are.equal(output, sdk.catalog.added[1]:getRawMetadata("path"))
        assert.are.equal(photo, sdk.catalog.added[1].stackedWith)
        local settings = sdk.exports()[1]
        assert.are.equal("preserveRAW", settings.LR_DNG_conversionMethod)
        assert.is_false(settings.LR_DNG_embedRAW)
        assert.is_false(settings.LR_DNG_lossyCompression)
        assert.is_false(settings.LR_DNG_embedCache)
        assert.are.equal("rename", settings.LR_collisionHandling)
        assert.is_false(lfs.attributes(settings.LR_export_destinationPathPrefix, "mode") ~= nil,
            "the temporary export folder is removed")
    end)

    itWithWorker("a converted raw with no matching profile falls back to residual detection only", function()
        local sim = world.simulate(12)
        local raw = sim.dir .. "/lights/DSC_0007.ARW"
        assert(os.rename(sim.lights[1], raw))
        local photo = sdk.catalog:addExistingPhoto(raw, { fileFormat = "RAW", model = "SimCam Mk1", iso = 1600 })
        sdk.catalog:select({ photo })
        world.answerCorrectDialog({ stageResidual = true })

        local summary = world.runCommand(CorrectDialog)

        assert.are.equal(1, #summary.corrected, summary.failed[1] and summary.failed[1].failure)
        local note = summary.corrected[1].note
        assert.truthy(note:find("No profile matched", 1, true) and note:find("residual detection only", 1, true))
        assert.truthy(sdk.view.withTitle(world.shown("modal")[2].contents, "DSC_0007.ARW: No profile matched"))
        assert.are.equal(sim.dir .. "/lights/DSC_0007_hotpixels.dng", sdk.catalog.added[1]:getRawMetadata("path"))
    end)

    itWithWorker("a broken residual model fails each photo that asked for stage 3, by name, and writes nothing",
        function()
            local sim = world.simulate(11)
            world.profile(sim, "SimCam night")
            local broken = world.tmp .. "/residual-broken.npz"
            local f = assert(io.open(broken, "wb"))
            f:write("not a weights file")
            f:close()
            import("LrPrefs").prefsForPlugin().workerPath = world.wrapper(world.tmp .. "/worker-broken-model",
                sdk.shellQuote((world.realWorker())), "export HOTPIXELS_MODEL=" .. sdk.shellQuote(broken))
            world.selectFiles({ sim.lights[1], sim.lights[2] })
            local seen = world.answerCorrectDialog({ stageResidual = true })

            local summary = world.runCommand(CorrectDialog)

            assert.are.equal(0, #summary.corrected, "stage 3 was asked for: never a silent skip")
            assert.are.equal(2, #summary.failed)
            for _, entry in ipairs(summary.failed) do
                assert.truthy(entry.failure:find("model", 1, true), entry.failure)
            end
            assert.truthy(sdk.view.withTitle(seen.summary.contents, "Failed: 2"))
            for _, name in ipairs(world.listDir(sim.dir .. "/lights")) do
                assert.is_nil(name:find("_hotpixels", 1, true), "nothing written: " .. name)
            end
            noTempLeftovers(sim.dir .. "/lights")
        end)

    itWithWorker("cancel mid-batch stops the running image and leaves no partial files", function()
        local sim = world.simulate(11)
        world.profile(sim, "SimCam night")
        world.selectFiles(sim.lights)
        sdk.onProgress(function(scope, what, caption)
            if scope.title == "Correcting hot pixels" and what == "caption" and tostring(caption):find("^1 of 3") then
                scope:cancel() -- the user clicks the progress bar's X as soon as the first photo is done
            end
        end)
        world.answerCorrectDialog({ stageResidual = true })

        local summary = world.runCommand(CorrectDialog)

        assert.is_true(summary.cancelled)
        assert.are.equal(0, #summary.failed)
        assert.are.equal(3, #summary.corrected + #summary.notDone)
        -- the finished photos (at least the first; the worker overlaps photos) are kept, imported, selected;
        -- every corrected file on disk is one of them: nothing half-written, nothing orphaned
        assert.are.equal("light_0001.dng", summary.corrected[1] and summary.corrected[1].fileName)
        assert.are.same(sdk.catalog.added, sdk.catalog.targets)
        assert.are.equal(1, #sdk.catalog.undoSteps)
        local imported = {}
        for _, photo in ipairs(sdk.catalog.added) do
            imported[photo:getRawMetadata("path")] = true
        end
        for _, name in ipairs(world.listDir(sim.dir .. "/lights")) do
            if name:find("_hotpixels", 1, true) and name:find("%.dng$") then
                assert.is_true(imported[sim.dir .. "/lights/" .. name], "a file the catalog does not know: " .. name)
            end
        end
        for _, name in ipairs(world.listDir(sim.dir .. "/lights")) do
            assert.is_nil(name:find("light_0003_hotpixels", 1, true), "output after cancel " .. name)
            assert.is_nil(name:find("%.tmp$") or name:find("partial", 1, true), "partial file " .. name)
        end
        noTempLeftovers(sim.dir .. "/lights")
        assert.are.equal(#summary.corrected, #sdk.catalog.added)
    end)

    itWithWorker("a series of tripod frames is compared once before the batch: every photo gets the defects " ..
        "that recur across the series repaired, and with no profile yet each is proposed for one", function()
        local sim = world.simulate(13, "--batch tripod --scene stars") -- 3 frames, stars drifting
        world.selectFiles(sim.lights) -- the library is empty: residual detection only
        local seen = world.answerCorrectDialog({ stageResidual = true })

        local summary = world.runCommand(CorrectDialog)

        assert.are.equal(3, #summary.corrected, summary.failed[1] and summary.failed[1].failure)
        local scan = summary.batch
        assert.truthy(scan.batchId, scan.note)
        assert.are.equal(1, scan.groups, "one body, one layout: one group")
        assert.are.equal(1, scan.series)
        assert.is_true(scan.proposed > 0, "no profile lists the recurring defects")
        local repaired = 0
        for _, entry in ipairs(summary.corrected) do
            local counts = entry.result.counts
            assert.is_number(counts.batch, entry.fileName)
            repaired = repaired + counts.batch
        end
        assert.is_true(repaired > 0, "the series' evidence repaired sites")
        local text = sdk.view.withTitle(seen.summary.contents, "hot pixels were repaired because they recur")
        assert.truthy(text, "the summary counts what the series repaired")
        assert.truthy(text.title:find(string.format("%d hot pixels were repaired", repaired), 1, true), text.title)
        assert.truthy(text.title:find(string.format("proposes adding %d hot pixels", scan.proposed), 1, true),
            text.title)
        noTempLeftovers(sim.dir .. "/lights")
    end)

    itWithWorker("a worker killed mid-batch is restarted once and the unfinished photos are sent again", function()
        local sim = world.simulate(11)
        world.profile(sim, "SimCam night")
        world.selectFiles(sim.lights)
        local WorkerClient = require "WorkerClient"
        local killed
        sdk.onProgress(function(scope, what, caption)
            if not killed and scope.title == "Correcting hot pixels" and what == "caption"
                and tostring(caption):find("^1 of 3") then
                killed = WorkerClient.shared():pid() -- the worker dies once it has reported the first photo
                os.execute("kill -9 " .. killed)
            end
        end)
        world.answerCorrectDialog({ stageResidual = false })

        local summary = world.runCommand(CorrectDialog)

        assert.truthy(killed)
        assert.are.equal(3, #summary.corrected, summary.failed[1] and summary.failed[1].failure)
        -- photo 1 came back as a `$/result` before the crash, and a photo the worker had written without
        -- reporting it is taken as it is: nothing is corrected twice
        for _, name in ipairs(world.listDir(sim.dir .. "/lights")) do
            assert.is_nil(name:find("_hotpixels_2", 1, true), "a duplicate " .. name)
        end
        assert.are.equal(1, WorkerClient.shared().restarts)
        assert.are_not.equal(killed, WorkerClient.shared():pid())
        assert.are.equal(#summary.corrected, #sdk.catalog.added)
        assert.are.equal(1, #sdk.catalog.undoSteps, "one undo step")
    end)

    itWithWorker("Preview One Photo… shows the real worker's marked crops and leaves nothing behind", function()
        local sim = world.simulate(11)
        world.profile(sim, "SimCam night")
        world.selectFiles({ sim.lights[1] })
        local preview
        world.answers({
            ["Correct Hot Pixels"] = function(call)
                sdk.view.press(sdk.view.withTitle(call.contents, "Preview One Photo…", "push_button"))
                return "cancel"
            end,
            ["Preview: light_0001.dng"] = function(call)
                preview = call
                local shown = {}
                for _, node in ipairs(sdk.view.nodes(call.contents)) do
                    if node.kind == "picture" then
                        shown[#shown + 1] = node.value
                        assert.are.equal("file", lfs.attributes(node.value, "mode"))
                    end
                end
                call.shown = shown
                return "ok"
            end,
        })

        world.runCommand(CorrectDialog)
        sdk.pump(function() return preview ~= nil end, 120, "the preview")

        assert.is_true(#preview.shown >= 2, "before and after of at least one crop")
        assert.truthy(preview.shown[1]:find("preview1_before.png", 1, true))
        sdk.pump(function() return lfs.attributes(preview.shown[1]) == nil end, 20, "the temporary files to go")
        assert.are.same({}, sdk.catalog.added or {})
        for _, name in ipairs(world.listDir(sim.dir .. "/lights")) do
            assert.is_nil(name:find("_hotpixels", 1, true), name)
        end
    end)

    itWithWorker("one request for the group: each photo's result arrives as it is done, and one photo can be " ..
        "cancelled alone", function()
        local sim = world.simulate(11)
        world.profile(sim, "SimCam night")
        world.selectFiles(sim.lights)
        local cancelled
        sdk.onProgress(function(group, what)
            -- the worker's first progress on the group's bar: photo 1 is under way
            if not cancelled and what == "caption" and group.parent
                and group.parent.title == "Correcting hot pixels" then
                cancelled = world.scopeCaptioned("light_0003.dng")
                if cancelled then
                    cancelled:cancel() -- the user cancels photo 3 while photo 1 is being corrected
                end
            end
        end)
        world.answerCorrectDialog({ stageResidual = false })

        local summary = world.runCommand(CorrectDialog)

        assert.truthy(cancelled)
        assert.are.equal(2, #summary.corrected, summary.failed[1] and summary.failed[1].failure)
        assert.are.equal("light_0003.dng", summary.notDone[1] and summary.notDone[1].fileName)
        local arrived = 0
        for _, line in ipairs(sdk.logs()) do
            arrived = arrived + (line:find("^info result arrived for") and 1 or 0)
        end
        assert.are.equal(3, arrived, "three $/result notifications: two photos and the cancelled one")
        for _, name in ipairs(world.listDir(sim.dir .. "/lights")) do
            assert.is_nil(name:find("light_0003_hotpixels", 1, true), name)
        end
        assert.are.equal(2, #sdk.catalog.added)
    end)
end)
