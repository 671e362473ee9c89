--[[----------------------------------------------------------------------------
ProfileLibraryDialog.lua: "Profile Library…".

Lists the library's profiles (camera, serial, ISO, exposure, temperature, date,
hot count) and acts on the one chosen in the popup: rename, delete (after a
confirm), export, show its pictures; import adds a profile file. Each button
runs its worker call in its own task and refreshes the bound list, since a
modal dialog's views cannot be rebuilt while it is open.
------------------------------------------------------------------------------]]

local LrBinding = import "LrBinding"
local LrDialogs = import "LrDialogs"
local LrPathUtils = import "LrPathUtils"
local LrTasks = import "LrTasks"
local LrView = import "LrView"

local Loc = require "Loc"
local Log = require "Log"
local Ui = require "Ui"
local WorkerClient = require "WorkerClient"

local bind = LrView.bind

local ProfileLibraryDialog = {}

local function range(pair, format)
    pair = Ui.value(pair)
    if type(pair) ~= "table" or Ui.value(pair[1]) == nil then
        return nil
    end
    local lo, hi = format(pair[1]), format(pair[2] or pair[1])
    return lo == hi and lo or (lo .. "–" .. hi)
end

local function day(text)
    text = Ui.value(text)
    return type(text) == "string" and text:sub(1, 10) or "?"
end

--- What a learned profile was learned from: photos, date range, settings (nil for a dark-frame profile).
function ProfileLibraryDialog.learnedText(p)
    local learned = Ui.value(p.learned)
    if Ui.value(p.kind) ~= "learned" or type(learned) ~= "table" then
        return nil
    end
    local settings = {}
    settings[#settings + 1] = range(learned.iso, function(v) return Ui.iso(v) end)
    settings[#settings + 1] = range(learned.exposure_s, function(v) return Ui.exposure(v) end)
    settings[#settings + 1] = range(learned.temperature_c, function(v) return Ui.temperature(v) end)
    return Loc.text("Library/Learned", "learned from ^1 photos taken ^2 to ^3 (^4)",
        tostring(Ui.value(learned.photos) or "?"), day(learned.first_capture), day(learned.last_capture),
        table.concat(settings, ", "))
end

--- One line describing a profile summary.
function ProfileLibraryDialog.describe(p)
    local camera = Ui.value(p.camera) or p
    local stats = Ui.value(p.stats) or {}
    local hot = Ui.value(p.hot_count) or Ui.value(stats.n_hot)
    local created = tostring(Ui.value(p.created) or "?"):sub(1, 10)
    local learned = ProfileLibraryDialog.learnedText(p)
    if learned then
        return Loc.text("Library/LineLearned", "^1 — ^2 ^3, serial ^4, ^5, ^6 hot pixels", tostring(p.name),
            tostring(Ui.value(camera.make) or ""), tostring(Ui.value(camera.model) or "?"),
            tostring(Ui.value(camera.serial) or "unknown"), learned, tostring(hot or "?"))
    end
    return Loc.text("Library/Line", "^1 — ^2 ^3, serial ^4, ^5, ^6, ^7, ^8, ^9 hot pixels", tostring(p.name),
        tostring(Ui.value(camera.make) or ""), tostring(Ui.value(camera.model) or "?"),
        tostring(Ui.value(camera.serial) or "unknown"), Ui.iso(p.iso), Ui.exposure(p.exposure_s),
        Ui.temperature(p.temperature_c), created, tostring(hot or "?"))
end

--- Reloads the list into props (profiles, profileItems, listing, selected, details). Call from a task.
function ProfileLibraryDialog.refresh(props, select)
    local result, err = WorkerClient.call("profiles.list", {})
    if not result then
        props.listing = Loc.text("Library/1", "The profile list could not be read: ") .. err.message
        props.profiles, props.profileItems = {}, {}
        return false, err
    end
    local profiles = Ui.value(result.profiles) or {}
    local items, lines, byName = {}, {}, {}
    for i, p in ipairs(profiles) do
        items[i] = { title = p.name, value = p.name }
        lines[i] = ProfileLibraryDialog.describe(p)
        byName[p.name] = p
    end
    for _, e in ipairs(Ui.value(result.errors) or {}) do
        lines[#lines + 1] = string.format("(unreadable) %s: %s", tostring(e.file), tostring(e.message))
    end
    props.profiles = byName
    props.profileItems = items
    props.listing = #lines > 0 and table.concat(lines, "\n") or Loc.text("Library/2", "No profiles yet: use “Create " ..
        "Profile from Dark Frames…” on a set of dark frames.")
    local wanted = select or props.selected
    if not byName[wanted] then
        wanted = profiles[1] and profiles[1].name or nil
    end
    props.selected = wanted
    props.newName = wanted
    props.details = wanted and ProfileLibraryDialog.describe(byName[wanted]) or ""
    return true
end

-- Runs `fn` in its own task, one action at a time, reporting errors.
local function action(props, title, fn)
    return function()
        if props.busy then
            return
        end
        props.busy = true
        LrTasks.startAsyncTask(function()
            local ok, err = LrTasks.pcall(fn)
            if not ok then
                Log.error(title, "failed:", err)
                LrDialogs.message(title, tostring(err), "critical")
            end
            props.busy = false
        end, "HotPixels " .. title)
    end
end

local function report(title, err)
    Ui.showWorkerError(title, err)
end

function ProfileLibraryDialog.rename(props)
    local old, new = props.selected, props.newName
    if not old or not new or new == "" or new == old then
        return
    end
    local _, err = WorkerClient.call("profiles.rename", { name = old, new_name = new })
    if err then
        return report(Loc.text("Library/3", "The profile could not be renamed"), err)
    end
    ProfileLibraryDialog.refresh(props, new)
end

function ProfileLibraryDialog.delete(props)
    local name = props.selected
    if not name then
        return
    end
    local answer = LrDialogs.confirm(Loc.text("Library/4", "Delete the profile “") .. name .. "”?",
        Loc.text("Library/5", "Its file and pictures are removed from the library. Corrected photos are not " ..
            "affected."), Loc.text("Library/6", "Delete"), Loc.text("Library/7", "Cancel"))
    if answer ~= "ok" then
        return
    end
    local _, err = WorkerClient.call("profiles.delete", { name = name })
    if err then
        return report(Loc.text("Library/8", "The profile could not be deleted"), err)
    end
    ProfileLibraryDialog.refresh(props)
end

function ProfileLibraryDialog.import(props)
    local picked = LrDialogs.runOpenPanel { title = Loc.text("Library/9", "Import a HotPixels profile"),
        canChooseFiles = true,
        canChooseDirectories = false, allowsMultipleSelection = false, fileTypes = { "hpprofile" } }
    if not picked or not picked[1] then
        return
    end
    -- the imported profile is named after its file, so a renamed copy does not clash with its original
    local name = LrPathUtils.removeExtension(LrPathUtils.leafName(picked[1]))
    local result, err = WorkerClient.call("profiles.import", { path = picked[1], name = name })
    if err then
        return report(Loc.text("Library/10", "The profile could not be imported"), err)
    end
    ProfileLibraryDialog.refresh(props, result.profile and result.profile.name)
end

function ProfileLibraryDialog.export(props)
    local name = props.selected
    if not name then
        return
    end
    local path = LrDialogs.runSavePanel { title = Loc.text("Library/11", "Export the profile “") .. name .. "”",
        requiredFileType = "hpprofile", canCreateDirectories = true }
    if not path then
        return
    end
    local result, err = WorkerClient.call("profiles.export", { name = name, path = path })
    if err then
        return report(Loc.text("Library/12", "The profile could not be exported"), err)
    end
    LrDialogs.message(Loc.text("Library/13", "Profile exported"), tostring(result.path), "info")
end

--- The view of one profile's pictures (from `profiles.get`).
function ProfileLibraryDialog.picturesView(f, profile)
    local pictures = Ui.value(profile.pictures) or {}
    local items = { f:static_text { title = ProfileLibraryDialog.describe(profile), width = 1088 } }
    local grid = Ui.chartGrid(f, pictures)
    items[#items + 1] = grid or f:static_text { title = Loc.text("Library/NoPictures",
        "This profile has no pictures.") }
    return f:column(items)
end

function ProfileLibraryDialog.pictures(props)
    local name = props.selected
    if not name then
        return
    end
    local result, err = WorkerClient.call("profiles.get", { name = name })
    if err then
        return report(Loc.text("Library/14", "The profile could not be read"), err)
    end
    local f = LrView.osFactory()
    LrDialogs.presentModalDialog { title = Loc.text("Library/15", "Profile “") .. name .. "”",
        contents = ProfileLibraryDialog.picturesView(f, Ui.value(result.profile) or {}),
        cancelVerb = "< exclude >" }
end

--- The dialog's view tree (bound to props).
function ProfileLibraryDialog.buildView(f, props)
    return f:column {
        bind_to_object = props,
        spacing = f:dialog_spacing(),
        f:scrolled_view { width = 720, height = 220,
            f:static_text { title = bind("listing"), width_in_chars = 110, height_in_lines = 12 } },
        f:row {
            f:static_text { title = Loc.text("Library/16", "Profile:") },
            f:popup_menu { value = bind("selected"), items = bind("profileItems"), width_in_chars = 36 },
        },
        f:static_text { title = bind("details"), width_in_chars = 110 },
        f:row {
            f:static_text { title = Loc.text("Library/17", "New name:") },
            f:edit_field { value = bind("newName"), width_in_chars = 30 },
            f:push_button { title = Loc.text("Library/18", "Rename"), action = action(props, "Rename", function()
                ProfileLibraryDialog.rename(props)
            end) },
        },
        f:row {
            f:push_button { title = Loc.text("Library/19", "Delete…"), action = action(props, "Delete", function()
                ProfileLibraryDialog.delete(props)
            end) },
            f:push_button { title = Loc.text("Library/20", "Import…"), action = action(props, "Import", function()
                ProfileLibraryDialog.import(props)
            end) },
            f:push_button { title = Loc.text("Library/21", "Export…"), action = action(props, "Export", function()
                ProfileLibraryDialog.export(props)
            end) },
            f:push_button { title = Loc.text("Library/22", "Pictures…"), action = action(props, "Pictures", function()
                ProfileLibraryDialog.pictures(props)
            end) },
        },
    }
end

--- The whole command, in the calling task.
function ProfileLibraryDialog.run(context)
    return Ui.guard(context, Loc.text("Library/23", "Profile Library"), function()
        local props = LrBinding.makePropertyTable(context)
        local ok, err = ProfileLibraryDialog.refresh(props)
        if not ok and err.name and err.name:match("^worker_") then
            Ui.showWorkerError(Loc.text("Library/24", "The HotPixels worker is not available"), err)
            return nil
        end
        props:addObserver("selected", function(_, _, value)
            props.newName = value
            local p = props.profiles and props.profiles[value]
            props.details = p and ProfileLibraryDialog.describe(p) or ""
        end)
        local f = LrView.osFactory()
        LrDialogs.presentModalDialog { title = Loc.text("Library/25", "HotPixels Profile Library"),
            contents = ProfileLibraryDialog.buildView(f, props), actionVerb = Loc.text("Library/26", "Close"),
                cancelVerb = "< exclude >" }
        return props
    end)
end

return ProfileLibraryDialog
