--[[----------------------------------------------------------------------------
LearnDialog.lua: "Learn Hot Pixels from Selected Photos…" (issue 15).

Without dark frames, a camera's hot pixels can be learned from ordinary night
photos of one body: a hot pixel stays on the same site in every photo while the
scene changes. The selected photos (8 or more for a new profile; any number to
update a learned one) go to `profiles.learn` with a progress bar and cancel.
The summary says how many hot pixels (and RTS sites) were learned from how many
photos, and which photos were skipped and why. Later corrections auto-match the
learned profile like any other, and say why.
------------------------------------------------------------------------------]]

local LrApplication = import "LrApplication"
local LrBinding = import "LrBinding"
local LrDialogs = import "LrDialogs"
local LrFileUtils = import "LrFileUtils"
local LrProgressScope = import "LrProgressScope"
local LrView = import "LrView"

local Exporter = require "Exporter"
local Loc = require "Loc"
local Log = require "Log"
local Ui = require "Ui"
local WorkerClient = require "WorkerClient"

local bind = LrView.bind

local LearnDialog = {}

LearnDialog.MIN_PHOTOS = 8 -- for a new profile (profiles.learn refuses fewer unless it updates one)
LearnDialog.NEW = "__new__"

--- The popup: a new profile, or one of the learned profiles of the library to update.
function LearnDialog.targetItems(profiles)
    local items = { { title = Loc.text("Learn/New", "A new learned profile"), value = LearnDialog.NEW } }
    for _, p in ipairs(profiles or {}) do
        if Ui.value(p.kind) == "learned" then
            items[#items + 1] = { title = Loc.text("Learn/Update", "Update “^1”", p.name), value = p.name }
        end
    end
    return items
end

--- The dialog's view tree (bound to props: target, name, tracked).
function LearnDialog.buildView(f, props, photoCount, items)
    return f:column {
        bind_to_object = props,
        spacing = f:dialog_spacing(),
        f:static_text { title = Loc.text("Learn/Intro", "Learn the hot pixels of one camera from ^1: a hot pixel " ..
            "stays on the same spot in every photo while the scene changes. Use 8 or more night photos of one " ..
            "body.", Ui.count(photoCount, "selected photo")), width = 480, height_in_lines = 3 },
        f:row {
            f:static_text { title = Loc.text("Learn/Into", "Learn into:"), width = 90 },
            f:popup_menu { value = bind("target"), items = items, width = 300 },
        },
        f:row {
            f:static_text { title = Loc.text("Learn/Name", "Name:"), width = 90 },
            f:edit_field { value = bind("name"), width = 300, enabled = bind { key = "target",
                transform = function(v) return v == LearnDialog.NEW end } },
        },
        f:checkbox { title = Loc.text("Learn/Tracked", "Shot on a tracking mount (stars stay on the same pixels)"),
            value = bind("tracked") },
    }
end

--- The summary's words for a profiles.learn result.
function LearnDialog.summaryText(result)
    local profile = Ui.value(result.profile) or {}
    local lines = { Loc.text("Learn/Result", "“^1”: ^2 hot pixels (^3 that flicker) learned from ^4 photos in ^5 s.",
        tostring(profile.name), tostring(Ui.value(result.sites) or 0), tostring(Ui.value(result.rts) or 0),
        tostring(Ui.value(result.photos_used) or 0), string.format("%.0f", tonumber(Ui.value(result.seconds)) or 0)) }
    local dark = Ui.value(result.no_dark_signal) or {}
    if #dark > 0 then
        lines[#lines + 1] = Loc.text("Learn/NoDarkSignal", "No dark signal in ^1 photos (long-exposure noise " ..
            "reduction on in the camera?); left out: ^2", tostring(#dark), table.concat(dark, ", "))
    end
    local skipped = Ui.value(result.skipped) or {}
    if #skipped > 0 then
        lines[#lines + 1] = Loc.text("Learn/Skipped", "Not used:")
        for _, s in ipairs(skipped) do
            local e = Ui.value(s.error) or {}
            lines[#lines + 1] = "  " .. tostring(s.path):match("([^/\\]+)$") .. ": " .. tostring(e.message)
        end
    end
    return table.concat(lines, "\n")
end

--- The whole command, in the calling task. Returns the learned profile's summary (nil if none).
function LearnDialog.run(context)
    return Ui.guard(context, Loc.text("Learn/Title", "Learn Hot Pixels from Selected Photos"), function()
        local photos = LrApplication.activeCatalog():getTargetPhotos()
        if #photos == 0 then
            LrDialogs.message(Loc.text("Learn/NoneTitle", "No photos selected"), Loc.text("Learn/NoneWhy",
                "Select 8 or more night photos of one camera first."), "info")
            return nil
        end
        local list, err = WorkerClient.call("profiles.list", {})
        if not list then
            Ui.showWorkerError(Loc.text("Worker/Unavailable", "The HotPixels worker is not available"), err)
            return nil
        end
        local items = LearnDialog.targetItems(Ui.value(list.profiles))
        local props = LrBinding.makePropertyTable(context)
        props.target = LearnDialog.NEW
        local model = photos[1]:getFormattedMetadata("cameraModel")
        props.name = Loc.text("Learn/DefaultName", "^1 learned", model or "Camera")
        props.tracked = false
        local f = LrView.osFactory()
        local answer = LrDialogs.presentModalDialog { title = Loc.text("Learn/Title",
            "Learn Hot Pixels from Selected Photos"), contents = LearnDialog.buildView(f, props, #photos, items),
            actionVerb = Loc.text("Learn/Action", "Learn") }
        if answer ~= "ok" then
            return nil
        end
        local update = props.target ~= LearnDialog.NEW
        local scope = LrProgressScope { title = Loc.text("Learn/Progress", "Learning hot pixels"),
            functionContext = context }
        scope:setCancelable(true)
        local paths, temps, problems = Exporter.dngPaths(photos, scope)
        context:addCleanupHandler(function()
            for _, folder in ipairs(temps) do
                LrFileUtils.delete(folder)
            end
        end)
        if not update and #paths < LearnDialog.MIN_PHOTOS then
            scope:done()
            LrDialogs.message(Loc.text("Learn/TooFewTitle", "Not enough photos"), Loc.text("Learn/TooFew",
                "A new learned profile needs 8 or more photos of one camera; ^1 can be read.", #paths) ..
                (#problems > 0 and ("\n" .. table.concat(problems, "\n")) or ""), "warning")
            return nil
        end
        local result
        result, err = WorkerClient.call("profiles.learn", { paths = paths, name = update and props.target or props.name,
            update = update, tracked = props.tracked }, { scope = scope })
        scope:done()
        if not result then
            if not err.cancelled then
                Ui.showWorkerError(Loc.text("Learn/Failed", "The hot pixels could not be learned"), err)
            end
            return nil
        end
        Log.info("learned profile", (Ui.value(result.profile) or {}).name)
        LrDialogs.presentModalDialog { title = Loc.text("Learn/Done", "Hot pixels learned"),
            contents = f:column { f:static_text { title = LearnDialog.summaryText(result), width = 480,
                height_in_lines = 8 } }, cancelVerb = "< exclude >", actionVerb = Loc.text("Learn/OK", "OK") }
        return Ui.value(result.profile)
    end)
end

return LearnDialog
