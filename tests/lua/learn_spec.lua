-- "Learn Hot Pixels from Selected Photos…" (issue 15's plug-in side) against support/fake_worker.lua,
-- which speaks the profiles.learn contract of contracts.md.
package.path = "tests/lua/support/?.lua;" .. package.path
local world = require "world"
local sdk = world.sdk

local function withFakeWorker()
    local record = sdk.makeTempDir("record") .. "/requests.jsonl"
    world.fresh({ workerPath = world.fakeWorker("series", record) })
    return record
end

local function stars(count)
    local extra = {}
    for i = 1, count do
        extra[i] = { string.format("%d:%d", 5 + i, 40 + i) } -- a star that moves from photo to photo
    end
    return extra
end

describe("Learn Hot Pixels from Selected Photos…", function()
    after_each(function()
        world.stopWorker()
        assert.are.same({}, sdk.state and sdk.state.taskErrors or {})
        assert.are.same({}, sdk.state and sdk.state.callbackErrors or {})
    end)

    it("is its own menu item in Info.lua", function()
        world.fresh()
        local info = assert(loadfile(sdk.state.pluginPath .. "/Info.lua"))()
        local found
        for _, item in ipairs(info.LrLibraryMenuItems) do
            if item.file == "LearnMenuItem.lua" then
                found = item
            end
        end
        assert.truthy(found)
        assert.are.equal("Learn Hot Pixels from Selected Photos…", found.title)
        assert.are.equal("file", require("lfs").attributes(sdk.state.pluginPath .. "/LearnMenuItem.lua", "mode"))
    end)

    it("learns a profile from 10 night photos with progress, then a new photo of that body auto-matches it and " ..
        "the summary says why; the library shows what it was learned from", function()
        local record = withFakeWorker()
        local LearnDialog = require "LearnDialog"
        local frames = world.fakeFrames(10, { serial = "NIGHT7", extra = stars(10) })
        world.selectFiles(frames)
        local progress, summary = 0, nil
        sdk.onProgress(function(scope, what)
            if what == "portion" and scope.title == "Learning hot pixels" then
                progress = progress + 1
            end
        end)
        world.answers({
            ["Learn Hot Pixels from Selected Photos"] = function(call)
                call.props.name = "Night body learned"
                return "ok"
            end,
            ["Hot pixels learned"] = function(call)
                summary = call
                return "ok"
            end,
        })

        local profile = world.runCommand(LearnDialog)

        assert.are.equal("Night body learned", profile.name)
        assert.are.equal("learned", profile.kind)
        local calls = world.recorded(record, "profiles.learn")
        assert.are.equal(1, #calls)
        assert.are.same(frames, calls[1].params.paths)
        assert.is_false(calls[1].params.update)
        assert.is_true(progress >= 5, "the bar moved with the worker's progress")
        assert.truthy(sdk.view.withTitle(summary.contents, "“Night body learned”: 3 hot pixels (0 that flicker) " ..
            "learned from 10 photos"))

        -- the library lists it with what it was learned from
        local ProfileLibraryDialog = require "ProfileLibraryDialog"
        local line = ProfileLibraryDialog.describe(profile)
        assert.truthy(line:find("learned from 10 photos taken 2026-08-12 to 2026-08-13 (ISO 1600–ISO 3200, 20 s–30 s)",
            1, true), line)

        -- a new photo of that body: the learned profile is matched, and the summary says why
        local CorrectDialog = require "CorrectDialog"
        world.selectFiles(world.fakeFrames(1, { serial = "NIGHT7", prefix = "later" }))
        local seen = world.answerCorrectDialog({})
        local corrected = world.runCommand(CorrectDialog)
        assert.are.equal(1, #corrected.corrected)
        assert.are.equal("Night body learned", seen.dialog.props.profile_1)
        assert.truthy(sdk.view.withTitle(seen.summary.contents, "“Night body learned” matched automatically: " ..
            "learned from 10 photos of this body (serial NIGHT7)"))
    end)

    it("updates a learned profile from fewer photos, and cancelling the bar leaves nothing learned", function()
        local record = withFakeWorker()
        local LearnDialog = require "LearnDialog"
        world.selectFiles(world.fakeFrames(8, { serial = "NIGHT7", extra = stars(8) }))
        world.answers({ ["Hot pixels learned"] = "ok" })
        assert.truthy(world.runCommand(LearnDialog))
        local first = world.recorded(record, "profiles.learn")[1].params.name

        -- two more photos: update the learned profile
        world.selectFiles(world.fakeFrames(2, { serial = "NIGHT7", prefix = "more" }))
        local items
        world.answers({
            ["Learn Hot Pixels from Selected Photos"] = function(call)
                items = sdk.view.bound(call.contents, "popup_menu", "value", "target")[1].items
                call.props.target = first
                return "ok"
            end,
            ["Hot pixels learned"] = "ok",
        })
        local updated = world.runCommand(LearnDialog)
        assert.are.equal(2, #items, "a new profile, or the learned one")
        assert.are.equal(10, updated.learned.photos)
        assert.is_true(world.recorded(record, "profiles.learn")[2].params.update)

        -- cancel mid-way
        world.selectFiles(world.fakeFrames(9, { serial = "OTHER9" }))
        sdk.onProgress(function(scope, what, done)
            if what == "portion" and scope.title == "Learning hot pixels" and done >= 3 then
                scope:cancel()
            end
        end)
        world.answers({ ["Learn Hot Pixels from Selected Photos"] = function(call)
            call.props.name = "Cancelled"
            return "ok"
        end })
        assert.is_nil(world.runCommand(LearnDialog))
        local cancels = world.recorded(record, "$/cancelRequest")
        assert.are.equal(1, #cancels)
        assert.are.equal(0, #world.shown("message"), "a cancel is not an error")
    end)

    it("names the photos that showed no dark signal in the summary", function()
        world.fresh()
        local LearnDialog = require "LearnDialog"
        local text = LearnDialog.summaryText({ profile = { name = "R6 learned" }, sites = 400, rts = 12,
            photos_used = 12, seconds = 9, skipped = {}, no_dark_signal = { "IMG_0101.dng", "IMG_0107.dng" } })
        assert.truthy(text:find("learned from 12 photos", 1, true), text)
        assert.truthy(text:find("No dark signal in 2 photos (long-exposure noise reduction on in the camera?); " ..
            "left out: IMG_0101.dng, IMG_0107.dng", 1, true), text)
        assert.falsy(LearnDialog.summaryText({ profile = { name = "x" }, no_dark_signal = {} }):find("No dark signal"))
    end)

    it("asks for 8 or more photos for a new profile", function()
        local record = withFakeWorker()
        local LearnDialog = require "LearnDialog"
        world.selectFiles(world.fakeFrames(5))
        world.answers({})
        assert.is_nil(world.runCommand(LearnDialog))
        assert.are.equal("Not enough photos", world.shown("message")[1].message)
        assert.are.same({}, world.recorded(record, "profiles.learn"))
    end)
end)
