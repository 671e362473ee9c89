-- Each dialog's view tree has its controls, bound to the right properties; Info.lua loads in
-- Lightroom's restricted loader and names files that exist.
package.path = "tests/lua/support/?.lua;" .. package.path
local world = require "world"
local sdk = world.sdk
local lfs = require "lfs"

local pluginDir = world.root .. "/hotpixel.lrdevplugin/"

local function boundKeys(tree)
    local keys = {}
    for _, node in ipairs(sdk.view.nodes(tree)) do
        for attr, v in pairs(node) do
            if type(v) == "table" and v.isBinding then
                keys[#keys + 1] = node.kind .. "." .. attr .. "=" .. v.key
            end
        end
    end
    table.sort(keys)
    return keys
end

local function has(list, item)
    for _, x in ipairs(list) do
        if x == item then
            return true
        end
    end
    return false
end

local function props()
    local result
    sdk.runTask(function()
        import("LrFunctionContext").callWithContext("t", function(ctx)
            result = import("LrBinding").makePropertyTable(ctx)
        end)
    end)
    return result
end

describe("Info.lua", function()
    it("loads with only string, LOC, WIN_ENV, MAC_ENV and _VERSION, and names files that exist", function()
        world.fresh()
        local chunk = assert(loadfile(pluginDir .. "Info.lua"))
        setfenv(chunk, { string = string, LOC = sdk.LOC, WIN_ENV = false, MAC_ENV = true, _VERSION = _VERSION })
        local info = chunk()
        assert.are.equal("app.hotpixels.lightroom", info.LrToolkitIdentifier)
        assert.is_true(info.LrSdkMinimumVersion >= 6.0, "LrSocket needs SDK 6.0")
        assert.is_true(info.LrSdkVersion >= info.LrSdkMinimumVersion)
        for _, menu in ipairs({ info.LrLibraryMenuItems, info.LrExportMenuItems }) do
            local titles = {}
            for i, item in ipairs(menu) do
                titles[i] = item.title
                assert.are.equal("file", lfs.attributes(pluginDir .. item.file, "mode"), item.file)
            end
            assert.are.same({ "Correct Hot Pixels…", "Create Profile from Dark Frames…",
                "Learn Hot Pixels from Selected Photos…", "Profile Library…" }, titles)
        end
        for _, key in ipairs({ "LrPluginInfoProvider", "LrInitPlugin", "LrShutdownPlugin", "LrShutdownApp" }) do
            assert.are.equal("file", lfs.attributes(pluginDir .. info[key], "mode"), key)
        end
    end)
end)

describe("menu items", function()
    it("each starts its command in a task; without a selection the commands explain what to select", function()
        world.fresh({ workerPath = world.fakeWorker("exit-3") })
        for _, file in ipairs({ "CorrectMenuItem.lua", "ProfileCreateMenuItem.lua", "ProfileLibraryMenuItem.lua" }) do
            assert(loadfile(pluginDir .. file))() -- as Lightroom runs a menu item's file
        end
        sdk.pump(nil, 60)
        local messages = {}
        for _, call in ipairs(world.shown("message")) do
            messages[#messages + 1] = call.message
        end
        assert.are.same({ "No photos selected", "No dark frames selected",
            "The HotPixels worker is not available" }, messages)
        assert.truthy(world.shown("message")[3].info:find("exit status 3", 1, true))
        assert.are.same({}, sdk.state.taskErrors)
    end)
end)

describe("view trees", function()
    before_each(function() world.fresh() end)

    it("Correct Hot Pixels: a profile popup and explanation per group, stages, sensitivity, suffix, stack", function()
        local CorrectDialog = require "CorrectDialog"
        local Groups = require "Groups"
        local groups = {
            { title = "HotPixels SimCam Mk1 #1 · ISO 1600 · 30 s · 2 photos", entries = { {}, {} }, best = "Night",
                explanation = "same body, ISO 1600 = 1600",
                candidates = { { name = "Night", explanation = "same body" },
                    { name = "Warm", explanation = "+6 °C" } } },
            { title = "Other · ISO 800 · 10 s · 1 photo", entries = { {} }, candidates = {},
                explanation = "No profile matches: the library is empty." },
        }
        local p = props()
        CorrectDialog.initProps(p, groups)
        local tree = CorrectDialog.buildView(import("LrView").osFactory(), p,
            groups, { entries = { {}, {}, {} }, skipped = {}, notes = {} })
        local keys = boundKeys(tree)
        for _, want in ipairs({ "popup_menu.value=profile_1", "popup_menu.value=profile_2",
            "static_text.title=profile_1_why", "static_text.title=profile_2_why", "checkbox.value=stageDark",
            "checkbox.value=stageHot", "checkbox.value=stageResidual", "slider.value=sensitivity",
            "edit_field.value=suffix", "checkbox.value=stackWithOriginal" }) do
            assert.is_true(has(keys, want), want .. " in " .. table.concat(keys, ", "))
        end
        assert.are.equal(p, tree.bind_to_object)
        local popup = sdk.view.bound(tree, "popup_menu", "value", "profile_1")[1]
        local values = {}
        for i, item in ipairs(popup.items) do
            values[i] = item.value
        end
        assert.are.same({ "Night", "Warm", Groups.RESIDUAL_ONLY, Groups.SKIP }, values)
        assert.are.equal("Night", p.profile_1)
        assert.are.equal(Groups.RESIDUAL_ONLY, p.profile_2, "no match: residual detection only by default")
        assert.truthy(p.profile_2_why:find("library is empty", 1, true))
        p.profile_1 = "Warm"
        assert.are.equal("+6 °C", p.profile_1_why, "the explanation follows the popup")
        assert.is_true(p.stackWithOriginal, "stack with original is on by default")
        assert.are.equal("_hotpixels", p.suffix)
        local slider = sdk.view.bound(tree, "slider", "value", "sensitivity")[1]
        assert.are.same({ 0, 1 }, { slider.min, slider.max })
    end)

    it("Correct Hot Pixels summary: counts, reasons and the before/after crop", function()
        local CorrectSummary = require "CorrectSummary"
        local png = world.tmp .. "/crop.png"
        io.open(png, "wb"):close()
        local tree = CorrectSummary.view(import("LrView").osFactory(), props(), {
            corrected = { { fileName = "a.dng", result = { output = "/x/a_hotpixels.dng", counts = { dark = 5, hot = 2,
                residual = 1 }, profile = { name = "Night", why = "same body" }, previews = { before = png,
                after = png } } } },
            failed = { { fileName = "b.dng", failure = "The worker stopped." } },
            skipped = { { fileName = "c.dng", skipReason = "offline" } }, notDone = {}, cancelled = false })
        assert.truthy(sdk.view.withTitle(tree, "Corrected: 1    Failed: 1    Skipped: 1"))
        assert.truthy(sdk.view.withTitle(tree, "b.dng: The worker stopped."))
        assert.truthy(sdk.view.withTitle(tree, "c.dng: offline"))
        local pictures = 0
        for _, node in ipairs(sdk.view.bound(tree, "picture", "value", "page")) do
            pictures = pictures + (node.value.transform(1) == png and 1 or 0)
        end
        assert.are.equal(2, pictures)
    end)

    it("Create Profile: the name field and the threshold slider", function()
        local ProfileCreateDialog = require "ProfileCreateDialog"
        local p = props()
        local tree = ProfileCreateDialog.buildView(import("LrView").osFactory(), p, 6)
        local keys = boundKeys(tree)
        assert.is_true(has(keys, "edit_field.value=name"))
        assert.is_true(has(keys, "slider.value=threshold"))
        assert.truthy(sdk.view.withTitle(tree, "6 dark frames"))
        assert.are.equal("SimCam ISO1600 30s 21C", ProfileCreateDialog.defaultName({ model = "SimCam", iso = 1600,
            exposure_s = 30, temperature_c = 20.6 }))
        assert.are.equal("Camera ISO800 1-250s", ProfileCreateDialog.defaultName({ iso = 800, exposure_s = 0.004 }))
    end)

    it("Profile Library: the list, the chosen profile, the new name and every action", function()
        local ProfileLibraryDialog = require "ProfileLibraryDialog"
        local p = props()
        local tree = ProfileLibraryDialog.buildView(import("LrView").osFactory(), p)
        local keys = boundKeys(tree)
        for _, want in ipairs({ "static_text.title=listing", "popup_menu.value=selected",
            "popup_menu.items=profileItems", "static_text.title=details", "edit_field.value=newName" }) do
            assert.is_true(has(keys, want), want)
        end
        for _, title in ipairs({ "Rename", "Delete…", "Import…", "Export…", "Pictures…" }) do
            local button = sdk.view.withTitle(tree, title, "push_button")
            assert.truthy(button, title)
            assert.are.equal("function", type(button.action))
        end
        local line = ProfileLibraryDialog.describe({ name = "Night", camera = { make = "Nikon", model = "Z 6",
            serial = "3001234" }, iso = 1600, exposure_s = 120, temperature_c = 18.25, created = "2026-03-14T22:01:00",
            stats = { n_hot = 512 } })
        assert.are.equal("Night — Nikon Z 6, serial 3001234, ISO 1600, 120 s, 18.2 °C, 2026-03-14, 512 hot pixels",
            line)
    end)

    it("Plug-in Manager: worker status, version, device, model, library folder, logs, restart", function()
        local PluginManager = require "PluginManager"
        local p = props()
        local sections = PluginManager.sectionsForTopOfDialog(import("LrView").osFactory(), p)
        local keys = boundKeys(sections[1])
        for _, want in ipairs({ "static_text.title=workerStatus", "static_text.title=workerVersion",
            "static_text.title=workerDevice", "static_text.title=workerModel", "edit_field.value=libraryFolder",
            "static_text.title=pluginLog", "static_text.title=workerLog" }) do
            assert.is_true(has(keys, want), want .. " in " .. table.concat(keys, ", "))
        end
        for _, title in ipairs({ "Restart Worker", "Choose…", "Show Logs" }) do
            assert.truthy(sdk.view.withTitle(sections[1], title, "push_button"), title)
        end
        -- the folder chooser stores the library folder in the preferences
        world.answers({ openPanel = { world.tmp } })
        PluginManager.chooseLibrary(p)
        assert.are.equal(world.tmp, p.libraryFolder)
        assert.are.equal(world.tmp, import("LrPrefs").prefsForPlugin().libraryFolder)
    end)
end)

describe("dialog sizes", function()
    local LAPTOP_PX = 1366 -- the narrowest common laptop screen
    local MARGINS_PX = 2 * 20 -- a modal dialog's own left and right margins

    it("a profile's four charts are laid out 2 x 2 and fit a 1366-px-wide screen", function()
        world.fresh()
        local ProfileLibraryDialog = require "ProfileLibraryDialog"
        local pictures = {}
        for _, key in ipairs({ "hot_map", "hot_per_frame", "temperature_per_frame", "excess_histogram" }) do
            pictures[key] = world.tmp .. "/" .. key .. ".png"
            io.open(pictures[key], "wb"):close()
        end
        local tree = ProfileLibraryDialog.picturesView(import("LrView").osFactory(), { name = "Night",
            pictures = pictures })
        local grid = {}
        for _, node in ipairs(sdk.view.nodes(tree)) do
            if node.kind == "row" then
                local n = 0
                for _, child in ipairs(node) do
                    n = n + (child.kind == "picture" and 1 or 0)
                end
                grid[#grid + 1] = n
            end
        end
        assert.are.same({ 2, 2 }, grid)
        local width = sdk.view.widthPx(tree)
        assert.is_true(width + MARGINS_PX <= LAPTOP_PX, "the charts need " .. width .. " px")
    end)

    it("the Correct dialog and its summary fit a 1366-px-wide screen", function()
        world.fresh()
        local CorrectDialog = require "CorrectDialog"
        local CorrectSummary = require "CorrectSummary"
        local f = import("LrView").osFactory()
        local p = props()
        local group = { title = "HotPixels FakeCam #PROFILED · ISO 1600 · 30 s · 3 photos", best = "Night",
            candidates = { { name = "Night", explanation = "same body" } }, entries = { { photo = {} } } }
        CorrectDialog.initProps(p, { group })
        local dialog = CorrectDialog.buildView(f, p, { group }, { entries = { {}, {}, {} }, skipped = {}, notes = {} })
        local png = world.tmp .. "/crop.png"
        io.open(png, "wb"):close()
        local summary = CorrectSummary.view(f, props(), { corrected = { { fileName = "a.dng", result = {
            output = "/x/a_hotpixels.dng", counts = {}, profile = {}, previews = { before = png, after = png } } } },
            failed = {}, skipped = {}, notDone = {} })
        for name, tree in pairs({ dialog = dialog, summary = summary }) do
            local width = sdk.view.widthPx(tree)
            assert.is_true(width + MARGINS_PX <= LAPTOP_PX, name .. " needs " .. width .. " px")
        end
    end)
end)
