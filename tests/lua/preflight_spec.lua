-- What "Correct Hot Pixels…" checks before a batch, each case with the real worker.
package.path = "tests/lua/support/?.lua;" .. package.path
local world = require "world"
local sdk = world.sdk
local lfs = require "lfs"
local itWithWorker = world.withWorker(it, pending)

-- Runs the command answering the main dialog with `settings` (plus `extra` answers); returns summary, seen.
local function correct(settings, extra)
    local seen = world.answerCorrectDialog(settings, extra)
    local CorrectDialog = require "CorrectDialog"
    return world.runCommand(CorrectDialog), seen
end

local function skippedReasons(summary)
    local out = {}
    for _, entry in ipairs(summary.skipped) do
        out[entry.fileName] = entry.skipReason
    end
    return out
end

describe("Before a batch", function()
    before_each(function() world.fresh() end)

    after_each(function()
        world.stopWorker()
        assert.are.same({}, sdk.state and sdk.state.taskErrors or {})
        assert.are.same({}, sdk.state and sdk.state.callbackErrors or {})
    end)

    it("explains an empty selection and starts no worker", function()
        sdk.catalog:select({})
        local summary = correct()
        assert.is_nil(summary)
        assert.are.equal("No photos selected", world.shown("message")[1].message)
        assert.is_false(package.loaded.WorkerClient.sharedIsRunning())
    end)

    it("asks before a very large selection and stops on Cancel", function()
        import("LrPrefs").prefsForPlugin().largeSelection = 3
        local photos = {}
        for i = 1, 4 do
            photos[i] = sdk.catalog:addExistingPhoto(world.tmp .. "/missing" .. i .. ".dng", {})
        end
        sdk.catalog:select(photos)
        local summary = correct(nil, { confirm = "cancel" })
        assert.is_nil(summary)
        assert.are.equal("Correct 4 photos?", world.shown("confirm")[1].message)
        assert.are.equal(0, #world.shown("modal"))
    end)

    it("reads free space through LrFileUtils.volumeAttributes, never a shell", function()
        local Preflight = require "Preflight"
        local free = world.task(function() return Preflight.freeBytes(world.tmp) end)
        assert.is_true(type(free) == "number" and free > 0)
        assert.is_nil(world.task(function() return Preflight.freeBytes(world.tmp .. "/no such folder") end))
        sdk.setFreeBytes(1000)
        assert.are.equal(1000, world.task(function() return Preflight.freeBytes(world.tmp) end))
        local execs = sdk.state.execCount
        world.task(function() return Preflight.freeBytes(world.tmp) end)
        assert.are.equal(execs, sdk.state.execCount, "no command was run")
    end)

    it("decides a folder is writable by creating and deleting a probe file", function()
        local Preflight = require "Preflight"
        local folder = world.tmp .. "/Night sky"
        lfs.mkdir(folder)
        assert.is_true(world.task(function() return Preflight.canWrite(folder) end))
        assert.are.same({}, world.listDir(folder), "the probe is gone")
        sdk.markReadOnly(folder)
        assert.is_false(world.task(function() return Preflight.canWrite(folder) end))
        assert.is_false(world.task(function() return Preflight.canWrite(world.tmp .. "/missing") end))
    end)

    itWithWorker("skips an offline photo with the reason and corrects the others", function()
        local sim = world.simulate(11)
        world.profile(sim, "Night")
        local online = sdk.catalog:addExistingPhoto(sim.lights[1], {})
        local offline = sdk.catalog:addExistingPhoto("/Volumes/Unplugged drive/night/IMG_0001.dng", {})
        local unplugged = sdk.catalog:addExistingPhoto(sim.lights[2], { online = false })
        sdk.catalog:select({ offline, online, unplugged })

        local summary = correct({ stageResidual = false })

        assert.are.equal(1, #summary.corrected)
        assert.are.equal(online, summary.corrected[1].photo)
        local reasons = skippedReasons(summary)
        assert.truthy(reasons["IMG_0001.dng"]:find("offline", 1, true))
        assert.truthy(reasons["light_0002.dng"]:find("offline", 1, true))
    end)

    itWithWorker("corrects a virtual copy's file once and stacks the result with its master", function()
        local sim = world.simulate(11)
        world.profile(sim, "Night")
        local master = sdk.catalog:addExistingPhoto(sim.lights[1], { rating = 2, develop = { Exposure2012 = 0.1 } })
        local copy = sdk.catalog:addExistingPhoto(sim.lights[1], { master = master, rating = 5,
            develop = { Exposure2012 = 1.0 } })
        local onlyCopy = sdk.catalog:addExistingPhoto(sim.lights[2], {
            master = sdk.catalog:addExistingPhoto(sim.lights[2], {}) })
        sdk.catalog:select({ copy, master, onlyCopy })

        local summary, seen = correct({ stageResidual = false })

        assert.are.equal(2, #summary.corrected)
        assert.are.equal(2, #sdk.catalog.added)
        local first, second = sdk.catalog.added[1], sdk.catalog.added[2]
        assert.are.equal(master, first.stackedWith)
        assert.are.equal(2, first:getRawMetadata("rating"), "the master's settings win over its copy's")
        assert.are.equal(onlyCopy:getRawMetadata("masterPhoto"), second.stackedWith)
        assert.is_nil(second:getRawMetadata("rating"))
        assert.truthy(sdk.view.withTitle(seen.dialog.contents, "1 virtual copy share"))
    end)

    itWithWorker("offers another folder for a read-only one, then does not stack", function()
        local sim = world.simulate(11)
        world.profile(sim, "Night")
        local elsewhere = world.tmp .. "/corrected elsewhere"
        lfs.mkdir(elsewhere)
        sdk.markReadOnly(sim.dir .. "/lights")
        local photo = sdk.catalog:addExistingPhoto(sim.lights[1], { rating = 3 })
        sdk.catalog:select({ photo })

        local summary, seen = correct({ stageResidual = false }, { confirm = "ok", openPanel = { elsewhere } })

        local note = sdk.view.withTitle(seen.summary.contents, "light_0001.dng: written to " .. elsewhere)
        assert.truthy(note, "the summary says where the file went")
        assert.truthy(note.title:find("its own folder is read-only", 1, true), note.title)
        assert.truthy(note.title:find("not stacked with the original", 1, true), note.title)
        assert.truthy(world.shown("confirm")[1].message:find("read-only", 1, true))
        assert.truthy(world.shown("confirm")[1].info:find("not be stacked", 1, true))
        assert.are.equal(1, #summary.corrected)
        local added = sdk.catalog.added[1]
        assert.are.equal(elsewhere .. "/light_0001_hotpixels.dng", added:getRawMetadata("path"))
        assert.is_nil(added.stackedWith)
        assert.are.equal(3, added:getRawMetadata("rating"))
        assert.is_nil(lfs.attributes(sim.dir .. "/lights/light_0001_hotpixels.dng"))
    end)

    itWithWorker("skips a read-only folder's photos when no other folder is chosen", function()
        local sim = world.simulate(11)
        sdk.markReadOnly(sim.dir .. "/lights")
        sdk.catalog:select({ sdk.catalog:addExistingPhoto(sim.lights[1], {}) })

        local summary = correct(nil, { confirm = "cancel" })

        assert.is_nil(summary, "nothing left to correct")
        local message = world.shown("message")[1]
        assert.are.equal("Nothing to correct", message.message)
        assert.truthy(message.info:find("read-only", 1, true))
    end)

    itWithWorker("warns about a photo HotPixels already corrected: skip it, or correct it again", function()
        local sim = world.simulate(11)
        world.profile(sim, "Night")
        local done = world.call("image.correct", { paths = { sim.lights[1] }, stages = { "dark", "hot" } })
        local corrected = done.results[1].output
        local photo = sdk.catalog:addExistingPhoto(corrected, {})
        local fresh = sdk.catalog:addExistingPhoto(sim.lights[2], {})
        sdk.catalog:select({ photo, fresh })

        local summary = correct({ stageResidual = false }, { confirm = "ok" })

        assert.truthy(world.shown("confirm")[1].message:find("already corrected by HotPixels", 1, true))
        assert.are.equal(1, #summary.corrected)
        assert.are.equal(fresh, summary.corrected[1].photo)
        assert.truthy(skippedReasons(summary)["light_0001_hotpixels.dng"]:find("Already corrected", 1, true))

        -- "Correct Again" forces it
        world.fresh()
        world.profile(sim, "Night")
        local again = sdk.catalog:addExistingPhoto(corrected, {})
        sdk.catalog:select({ again })
        local second = correct({ stageResidual = false }, { confirm = "other" })
        assert.are.equal(1, #second.corrected, second.failed[1] and second.failed[1].failure)
    end)

    itWithWorker("a group with no matching profile does not stop the others", function()
        local withProfile = world.simulate(11)
        local otherBody = world.simulate(12)
        world.profile(withProfile, "Body A")
        local a = sdk.catalog:addExistingPhoto(withProfile.lights[1], {})
        local b = sdk.catalog:addExistingPhoto(otherBody.lights[1], {})
        sdk.catalog:select({ a, b })

        local summary, seen = correct({ stageResidual = false, profile_2 = "__skip__" })

        local props = seen.dialog.props
        assert.are.equal("Body A", props.profile_1)
        assert.truthy(props.profile_2_why:find("skipped", 1, true), props.profile_2_why)
        local groups = sdk.view.nodes(seen.dialog.contents)
        local boxes = 0
        for _, node in ipairs(groups) do
            if node.kind == "group_box" and node.title:find("SimCam", 1, true) then
                boxes = boxes + 1
            end
        end
        assert.are.equal(2, boxes, "one group per body")
        assert.are.equal(1, #summary.corrected)
        assert.are.equal(a, summary.corrected[1].photo)
        assert.truthy(skippedReasons(summary)["light_0001.dng"]:find("No profile matches", 1, true))

        -- left at its default, the group runs residual detection only
        world.fresh()
        world.profile(withProfile, "Body A")
        sdk.catalog:select({ sdk.catalog:addExistingPhoto(withProfile.lights[2], {}),
            sdk.catalog:addExistingPhoto(otherBody.lights[2], {}) })
        local both, seen2 = correct({})
        assert.are.equal("__residual_only__", seen2.dialog.props.profile_2)
        assert.truthy(seen2.dialog.props.profile_2_why:find("No profile matches", 1, true))
        assert.are.equal(2, #both.corrected, both.failed[1] and both.failed[1].failure)
        local Json = require "Json"
        local profile = both.corrected[2].result.profile
        assert.is_true(profile == nil or profile == Json.null or profile.name == nil or profile.name == Json.null,
            "no profile for the other body")
    end)
end)
