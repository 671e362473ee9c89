-- "Create Profile from Dark Frames…" and "Profile Library…" end to end with the real worker.
package.path = "tests/lua/support/?.lua;" .. package.path
local world = require "world"
local sdk = world.sdk
local lfs = require "lfs"
local itWithWorker = world.withWorker(it, pending)

local function pictures(tree)
    local out = {}
    for _, node in ipairs(sdk.view.nodes(tree)) do
        if node.kind == "picture" then
            out[#out + 1] = node.value
        end
    end
    return out
end

describe("Create Profile from Dark Frames…", function()
    after_each(function()
        world.stopWorker()
        assert.are.same({}, sdk.state and sdk.state.taskErrors or {})
        assert.are.same({}, sdk.state and sdk.state.callbackErrors or {})
    end)

    itWithWorker("builds a profile from simulated darks that then auto-matches the night frames", function()
        world.fresh()
        local ProfileCreateDialog = require "ProfileCreateDialog"
        local sim = world.simulate(11)
        world.selectFiles(sim.darks)
        local seen = {}
        world.answers({
            ["Create Profile from Dark Frames"] = function(call)
                seen.name = call.props.name
                call.props.name = "Night body"
                call.props.threshold = 6
                return "ok"
            end,
            ["Profile created"] = function(call)
                seen.summary = call
                return "ok"
            end,
        })

        local profile = world.runCommand(ProfileCreateDialog)

        assert.truthy(seen.name:find("SimCam Mk1 ISO1600 30s", 1, true), seen.name)
        assert.truthy(seen.name:find("%d+C$"), "the temperature is part of the name: " .. seen.name)
        assert.are.equal("Night body", profile.name)
        local shown = pictures(seen.summary.contents)
        assert.is_true(#shown >= 2, "the summary shows the profile's pictures")
        for _, path in ipairs(shown) do
            assert.are.equal("file", lfs.attributes(path, "mode"))
        end
        assert.are.equal("OK", seen.summary.actionVerb)
        -- the profile now auto-matches a light frame of the same body in "Correct Hot Pixels…"
        local CorrectDialog = require "CorrectDialog"
        sdk.catalog:select({ sdk.catalog:addExistingPhoto(sim.lights[1], {}) })
        local matched
        world.answers({ ["Correct Hot Pixels"] = function(call)
            matched = call.props.profile_1
            return "cancel"
        end })
        world.runCommand(CorrectDialog)
        assert.are.equal("Night body", matched)
    end)

    itWithWorker("warns about mismatched darks, builds on Continue, and deletes the profile on cancel", function()
        world.fresh()
        local ProfileCreateDialog = require "ProfileCreateDialog"
        local a = world.simulate(11)
        local b = world.simulate(11, "--exposure 60")
        world.selectFiles({ a.darks[1], a.darks[2], a.darks[3], a.darks[4], b.darks[1] })
        local warned, summary
        world.answers({
            ["These dark frames do not all match"] = function(call)
                warned = call.info
                return "ok"
            end,
            ["Profile created"] = function(call)
                summary = call
                return "cancel"
            end,
        })

        local profile = world.runCommand(ProfileCreateDialog)

        assert.is_nil(profile)
        assert.truthy(warned and warned:find("exposure", 1, true), tostring(warned))
        assert.are.equal("Keep Profile", summary.actionVerb)
        assert.are.equal("Delete Profile", summary.cancelVerb)
        assert.truthy(sdk.view.withTitle(summary.contents, "exposure"))
        local listed = world.call("profiles.list", {})
        assert.are.equal(0, #listed.profiles)
    end)
end)

describe("Profile Library…", function()
    after_each(function()
        world.stopWorker()
        assert.are.same({}, sdk.state and sdk.state.taskErrors or {})
    end)

    itWithWorker("lists profiles and renames, exports, imports, shows pictures and deletes after a confirm",
        function()
            world.fresh()
            local sim = world.simulate(11)
            assert(world.call("profiles.create", { paths = sim.darks, name = "First" }))
            local ProfileLibraryDialog = require "ProfileLibraryDialog"
            local exportPath = world.tmp .. "/exported/First copy.hpprofile"
            lfs.mkdir(world.tmp .. "/exported")
            local steps = {}
            local function press(call, title, cond)
                local button = sdk.view.withTitle(call.contents, title, "push_button")
                sdk.view.press(button)
                local deadline = os.time() + 60
                while not cond() do
                    assert(os.time() < deadline, title .. " did not finish")
                    import("LrTasks").sleep(0.05)
                end
                steps[#steps + 1] = title
            end
            local listingBefore
            world.answers({
                ["HotPixels Profile Library"] = function(call)
                    local props = call.props
                    listingBefore = props.listing
                    props.newName = "Renamed"
                    press(call, "Rename", function() return props.selected == "Renamed" end)
                    press(call, "Export…", function() return lfs.attributes(exportPath, "mode") == "file" end)
                    press(call, "Import…", function() return props.profiles and props.profiles["First copy"] end)
                    props.selected = "First copy"
                    press(call, "Pictures…", function() return #world.shown("modal") >= 2 end)
                    press(call, "Delete…", function() return not props.profiles["First copy"] end)
                    return "ok"
                end,
                savePanel = exportPath,
                openPanel = { exportPath },
                confirm = "ok",
            })
            local props = world.runCommand(ProfileLibraryDialog)

            assert.truthy(listingBefore:find("First — HotPixels SimCam Mk1", 1, true), listingBefore)
            assert.truthy(listingBefore:find("ISO 1600", 1, true))
            assert.truthy(listingBefore:find("30 s", 1, true))
            assert.truthy(listingBefore:find("hot pixels", 1, true))
            assert.are.same({ "Rename", "Export…", "Import…", "Pictures…", "Delete…" }, steps)
            assert.truthy(props.profiles["Renamed"])
            assert.is_nil(props.profiles["First"])
            assert.is_nil(props.profiles["First copy"], "deleted after the confirm")
            assert.are.equal("file", lfs.attributes(exportPath, "mode"), "the exported file stays")
            local picturesDialog = world.shown("modal")[2]
            assert.is_true(#pictures(picturesDialog.contents) >= 2)
            local confirms = world.shown("confirm")
            assert.truthy(confirms[#confirms].message:find("Delete the profile", 1, true))
        end)
end)

describe("Create Profile from frames that are not all dark", function()
    after_each(function()
        world.stopWorker()
        assert.are.same({}, sdk.state and sdk.state.taskErrors or {})
        assert.are.same({}, sdk.state and sdk.state.callbackErrors or {})
    end)

    local function withFake()
        local record = sdk.makeTempDir("record") .. "/requests.jsonl"
        world.fresh({ workerPath = world.fakeWorker("series", record) })
        return record
    end

    it("names the frame that is not a dark frame and why, then builds without it", function()
        local record = withFake()
        local ProfileCreateDialog = require "ProfileCreateDialog"
        local frames = world.fakeFrames(4, { lit = { [3] = true } })
        world.selectFiles(frames)
        local refused, summary
        world.answers({
            ["“frame_0003.dng” is not a dark frame"] = function(call)
                refused = call
                return "ok"
            end,
            ["Profile created"] = function(call)
                summary = call
                return "ok"
            end,
        })

        local profile = world.runCommand(ProfileCreateDialog)

        assert.truthy(refused, "the dialog names the frame")
        assert.truthy(refused.info:find("light reached the sensor", 1, true), refused.info)
        assert.are.equal("Leave It Out and Continue", refused.actionVerb)
        local creates = world.recorded(record, "profiles.create")
        assert.are.equal(2, #creates)
        assert.are.same({ frames[1], frames[2], frames[4] }, creates[2].params.paths)
        assert.are.equal(3, profile.hot_count)
        assert.are.equal("OK", summary.actionVerb, "a plausible profile: nothing to decide")
    end)

    it("makes Delete the default button when the hot count is implausible", function()
        local record = withFake()
        local ProfileCreateDialog = require "ProfileCreateDialog"
        local many = {}
        for i = 1, 40 do
            many[i] = string.format("%d:%d", i, i) -- 40 of 4096 sites: about 1 % of the sensor
        end
        world.selectFiles(world.fakeFrames(3, { defects = many }))
        local summary
        world.answers({ ["Profile created"] = function(call)
            summary = call
            return "ok" -- the user presses Return: the default button
        end })

        local profile = world.runCommand(ProfileCreateDialog)

        assert.is_nil(profile, "deleted")
        assert.are.equal("Delete Profile", summary.actionVerb)
        assert.are.equal("Keep Profile", summary.otherVerb)
        assert.truthy(sdk.view.withTitle(summary.contents, "1.0 % of the sensor"))
        assert.are.equal(1, #world.recorded(record, "profiles.delete"))
    end)
end)
