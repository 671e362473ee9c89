-- A night on a tripod, as a Lightroom user corrects it: 20 frames from two bodies (two groups), the
-- second group cancelled half-way. The worker is support/fake_worker.lua speaking the batch contract of
-- issue 16 (one image.correct per group, `$/result` per photo, cancel with the finished photos kept).
package.path = "tests/lua/support/?.lua;" .. package.path
local world = require "world"
local sdk = world.sdk
local lfs = require "lfs"

local function withFakeWorker(mode)
    local record = sdk.makeTempDir("record") .. "/requests.jsonl"
    world.fresh({ workerPath = world.fakeWorker(mode, record) })
    return record
end

local function outputsIn(folder)
    local out = {}
    for _, name in ipairs(world.listDir(folder)) do
        if name:find("_hotpixels", 1, true) then
            out[#out + 1] = name
        end
    end
    return out
end

describe("A 20-photo tripod batch with two groups", function()
    after_each(function()
        world.stopWorker()
        assert.are.same({}, sdk.state and sdk.state.taskErrors or {})
        assert.are.same({}, sdk.state and sdk.state.callbackErrors or {})
    end)

    it("one group cancelled mid-way: one undo step, the finished photos selected and stacked, nothing " ..
        "half-written, and the summary's reasons right", function()
        local record = withFakeWorker("series")
        local CorrectDialog = require "CorrectDialog"
        -- body A has a profile in the library (matched automatically); body B has none
        local a = world.fakeFrames(10, { serial = "PROFILED", prefix = "A" })
        local b = world.fakeFrames(10, { serial = "OTHER", prefix = "B" })
        local photos = {}
        local night = sdk.catalog:addExistingCollection("Night of the Perseids", {})
        for i, path in ipairs(a) do
            photos[i] = sdk.catalog:addExistingPhoto(path, { rating = 3, title = "Perseids " .. i,
                caption = "Cap on the hill", copyright = "© Ann", gps = { latitude = 46.5, longitude = 7.9 } })
            night.photos[#night.photos + 1] = photos[i]
        end
        for i, path in ipairs(b) do
            photos[10 + i] = sdk.catalog:addExistingPhoto(path, {})
        end
        sdk.catalog:select(photos)
        local groupB
        local cancelledAfter
        sdk.onProgress(function(scope, what)
            if what == "portion" and scope.caption and scope.caption:find("#OTHER", 1, true) then
                groupB = scope
            end
            -- the user cancels group B's bar once 4 of its photos are done
            if groupB and not groupB:isCanceled() then
                local done = 0
                for _, s in ipairs(sdk.scopes()) do
                    if s.parent == groupB and s:isDone() then
                        done = done + 1
                    end
                end
                if done >= 4 then
                    cancelledAfter = done
                    groupB:cancel()
                end
            end
        end)
        local seen = world.answerCorrectDialog({ batchEvidence = false })

        local summary = world.runCommand(CorrectDialog)

        -- two groups, one request each
        local requests = world.recorded(record, "image.correct")
        assert.are.equal(2, #requests)
        assert.are.same(a, requests[1].params.paths)
        assert.are.equal("FakeCam night", requests[1].params.profile)
        assert.are.same(b, requests[2].params.paths)
        local cancels = world.recorded(record, "$/cancelRequest")
        assert.are.equal(1, #cancels)
        assert.are.equal(requests[2].id, cancels[1].params.id)
        -- group A whole, group B up to the cancel
        assert.truthy(cancelledAfter)
        assert.is_true(summary.cancelled)
        local doneB = #summary.corrected - 10
        assert.is_true(doneB >= 4 and doneB < 10, "group B stopped part-way: " .. doneB)
        assert.are.equal(20, #summary.corrected + #summary.notDone)
        assert.are.equal(0, #summary.failed)
        -- one undo step for the whole batch
        assert.are.same({ "HotPixels: " .. #summary.corrected .. " photos" }, sdk.catalog.undoSteps)
        -- the finished photos are selected, and each is stacked above its original
        assert.are.equal(#summary.corrected, #sdk.catalog.targets)
        for i, added in ipairs(sdk.catalog.added) do
            assert.are.equal(added, sdk.catalog.targets[i])
            assert.are.equal("above", added.stackPosition)
            assert.are.equal(summary.corrected[i].photo, added.stackedWith)
        end
        -- catalog-only metadata and collections follow the original
        local first = sdk.catalog.added[1]
        assert.are.equal("Perseids 1", first:getRawMetadata("title"))
        assert.are.equal("Cap on the hill", first:getRawMetadata("caption"))
        assert.are.equal("© Ann", first:getRawMetadata("copyright"))
        assert.are.same({ latitude = 46.5, longitude = 7.9 }, first:getRawMetadata("gps"))
        assert.are.equal(3, first:getRawMetadata("rating"))
        assert.are.equal(night, first:getContainedCollections()[1])
        -- nothing half-written: one complete file per finished photo, none for the others
        local folderB = b[1]:match("^(.*)/")
        assert.are.equal(10, #outputsIn(a[1]:match("^(.*)/")))
        assert.are.equal(doneB, #outputsIn(folderB))
        for _, name in ipairs(world.listDir(folderB)) do
            assert.is_nil(name:find("partial", 1, true), name)
        end
        for _, entry in ipairs(summary.notDone) do
            local stem = entry.fileName:gsub("%.dng$", "")
            assert.is_nil(lfs.attributes(folderB .. "/" .. stem .. "_hotpixels.dng"), entry.fileName)
            assert.truthy(entry.notDoneReason:find("cancelled this group", 1, true))
        end
        -- the summary says why each group's profile was used, in words, never a flag or "chosen by the user"
        local reasons = sdk.view.withTitle(seen.summary.contents, "matched automatically")
        assert.truthy(reasons, "the summary has the reasons")
        local text = reasons.title
        assert.truthy(text:find("“FakeCam night” matched automatically: same body (serial PROFILED), ISO 1600 = 1600",
            1, true), text)
        assert.truthy(text:find("No profile matches these photos: the library holds no profile for this body, so " ..
            "only residual detection ran.", 1, true), text)
        for _, node in ipairs(sdk.view.nodes(seen.summary.contents)) do
            local title = type(node.title) == "string" and node.title or ""
            assert.is_nil(title:find("--profile", 1, true), title)
            assert.is_nil(title:find("chosen by the user", 1, true), title)
            assert.is_nil(title:find("run.sh", 1, true), title)
        end
        assert.truthy(sdk.view.withTitle(seen.summary.contents, "Not done (cancelled): " .. #summary.notDone))
    end)

    it("cancelling one photo sends $/cancelRequest {id, path}: that photo is not done, the others go on",
        function()
            local record = withFakeWorker("series")
            local CorrectDialog = require "CorrectDialog"
            local frames = world.fakeFrames(5, { serial = "PROFILED" })
            world.selectFiles(frames)
            local target
            sdk.onProgress(function(_, what)
                if what == "portion" and not target then
                    target = world.scopeCaptioned("frame_0004.dng")
                    if target then
                        target:cancel() -- the user cancels photo 4 while photo 1 is being corrected
                    end
                end
            end)
            world.answerCorrectDialog({ batchEvidence = false })

            local summary = world.runCommand(CorrectDialog)

            local cancels = world.recorded(record, "$/cancelRequest")
            assert.are.equal(1, #cancels)
            assert.are.equal(frames[4], cancels[1].params.path)
            assert.are.equal(4, #summary.corrected)
            assert.are.equal(1, #summary.notDone)
            assert.are.equal("frame_0004.dng", summary.notDone[1].fileName)
            assert.truthy(summary.notDone[1].notDoneReason:find("cancelled this photo", 1, true))
            assert.are.equal(4, #sdk.catalog.added)
        end)

    it("after a series, one click adds the newly found hot pixels to the profile (profiles.addSites)", function()
        local record = withFakeWorker("series")
        local CorrectDialog = require "CorrectDialog"
        world.selectFiles(world.fakeFrames(4, { serial = "PROFILED" }))
        local seen = world.answerCorrectDialog({})

        world.runCommand(CorrectDialog)

        local button = sdk.view.withTitle(seen.summary.contents, "Add 3 newly found hot pixels to profile " ..
            "“FakeCam night”", "push_button")
        assert.truthy(button)
        sdk.view.press(button)
        sdk.pump(function() return #world.recorded(record, "profiles.addSites") == 1 end, 10, "profiles.addSites")
        local call = world.recorded(record, "profiles.addSites")[1]
        assert.are.equal("FakeCam night", call.params.name)
        assert.are.equal(3, #call.params.sites)
        assert.are.equal(4, #call.params.paths)
        local props = seen.summary.props
        sdk.pump(function() return props["added_FakeCam night"] ~= "" end, 10, "the answer")
        assert.are.equal("Added 3 hot pixels to “FakeCam night”.", props["added_FakeCam night"])
    end)

    it("previews one photo of a group before anything is committed, and the dialog shows each group's " ..
        "thumbnail", function()
        local record = withFakeWorker("series")
        local CorrectDialog = require "CorrectDialog"
        local frames = world.fakeFrames(3, { serial = "PROFILED" })
        local photos = world.selectFiles(frames)
        local preview
        world.answers({
            ["Correct Hot Pixels"] = function(call)
                local thumb = sdk.view.nodes(call.contents)
                local found
                for _, node in ipairs(thumb) do
                    if node.kind == "catalog_photo" then
                        found = node
                    end
                end
                assert.are.equal(photos[1], found.photo, "the group's first photo as a thumbnail")
                sdk.view.press(sdk.view.withTitle(call.contents, "Preview One Photo…", "push_button"))
                return "cancel" -- the user looks at the preview, then closes the dialog without correcting
            end,
            ["Preview: frame_0001.dng"] = function(call)
                preview = call
                return "ok"
            end,
        })

        world.runCommand(CorrectDialog)
        sdk.pump(function() return preview ~= nil end, 10, "the preview")

        local sent = world.recorded(record, "image.correct")
        assert.are.equal(1, #sent)
        assert.are.same({ frames[1] }, sent[1].params.paths)
        assert.are.equal("FakeCam night", sent[1].params.profile, "the group's current choice")
        local temp = sent[1].params.output_dir
        assert.are_not.equal(frames[1]:match("^(.*)/"), temp)
        sdk.pump(function() return lfs.attributes(temp) == nil end, 10, "the temporary folder to go")
        assert.are.same({}, outputsIn(frames[1]:match("^(.*)/")), "nothing beside the photos")
        assert.are.same({}, sdk.catalog.added or {}, "nothing in the catalog")
        local pictures = {}
        for _, node in ipairs(sdk.view.nodes(preview.contents)) do
            if node.kind == "picture" then
                pictures[#pictures + 1] = node.value
            end
        end
        assert.are.equal(4, #pictures, "two crops, before and after each")
        assert.truthy(pictures[1]:find("preview1_before", 1, true))
        assert.truthy(sdk.view.withTitle(preview.contents, "“FakeCam night” matched automatically"))
        assert.truthy(sdk.view.withTitle(preview.contents, "Row 10, column 12: 1000 DN repaired"))
    end)

    it("a raw photo's conversion to DNG can be cancelled: nothing is corrected, no temporary folder stays",
        function()
            local record = withFakeWorker("series")
            local CorrectDialog = require "CorrectDialog"
            local dng = world.fakeFrames(1, { serial = "PROFILED" })[1]
            local raw = dng:gsub("%.dng$", ".NEF")
            assert(os.rename(dng, raw))
            sdk.catalog:select({ sdk.catalog:addExistingPhoto(raw, { fileFormat = "RAW", make = "HotPixels",
                model = "FakeCam", iso = 1600, exposure = 30 }) })
            sdk.onProgress(function(scope, what, caption)
                if what == "caption" and caption == "frame_0001.NEF" then
                    scope:cancel() -- the user cancels as Lightroom starts converting the photo
                end
            end)
            world.answerCorrectDialog({})

            local summary = world.runCommand(CorrectDialog)

            assert.is_true(summary.cancelled)
            assert.are.equal(1, #summary.notDone)
            assert.truthy(summary.notDone[1].notDoneReason:find("conversion to DNG was cancelled", 1, true))
            assert.are.same({}, world.recorded(record, "image.correct"))
            local export = sdk.exports()[1]
            assert.truthy(export, "the export was started")
            assert.is_nil(lfs.attributes(export.LR_export_destinationPathPrefix), "its temporary folder is gone")
            assert.are.same({}, sdk.catalog.undoSteps)
        end)
end)
