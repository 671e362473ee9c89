--[[----------------------------------------------------------------------------
CorrectPreview.lua: "Preview One Photo…" in the Correct dialog, before anything
is committed.

The group's first photo is corrected with the group's current choices into a
fresh temporary folder (`image.correct` with `output_dir` and `report_dir`
there: the same pipeline as the batch, so the preview shows exactly what the
batch will do). The dialog shows the before/after crops of its strongest
repairs, the counts and why the profile is used; then the temporary folder is
deleted. Nothing reaches the photo's folder or the catalog.
------------------------------------------------------------------------------]]

local LrDialogs = import "LrDialogs"
local LrFileUtils = import "LrFileUtils"
local LrProgressScope = import "LrProgressScope"
local LrView = import "LrView"

local BatchRun = require "BatchRun"
local CorrectSummary = require "CorrectSummary"
local Exporter = require "Exporter"
local Groups = require "Groups"
local Json = require "Json"
local Loc = require "Loc"
local Ui = require "Ui"
local WorkerClient = require "WorkerClient"

local CorrectPreview = {}

CorrectPreview.MAX_CROPS = 3

--- The preview's view tree for `entry` (with .result and .job).
function CorrectPreview.view(f, entry)
    local r = entry.result
    local counts = Ui.value(r.counts) or {}
    local previews = Ui.value(r.previews) or {}
    local regions = Ui.value(previews.regions) or { { before = previews.before, after = previews.after } }
    local size = CorrectSummary.CROP_PX
    local columns = { spacing = f:control_spacing() }
    for i = 1, math.min(#regions, CorrectPreview.MAX_CROPS) do
        local region = regions[i]
        local before, after = Ui.picturePath(region.before), Ui.picturePath(region.after)
        if before and after then
            local site = Ui.value(region.site)
            columns[#columns + 1] = f:column {
                f:static_text { title = site and Loc.text("Preview/Site", "Row ^1, column ^2: ^3 DN repaired",
                    site[1], site[2], tostring(Ui.value(region.change_dn) or "?")) or "", width = size },
                f:picture { value = before, width = size, height = size },
                f:picture { value = after, width = size, height = size },
            }
        end
    end
    local rows = {
        spacing = f:control_spacing(),
        f:static_text { title = Loc.text("Preview/Counts", "^1: ^2 by the dark model, ^3 known hot pixels, ^4 " ..
            "residual. Top: before; bottom: after (enlarged 4x, repaired sites marked).", entry.fileName,
            tostring(Ui.value(counts.dark) or 0), tostring(Ui.value(counts.hot) or 0),
            tostring(Ui.value(counts.residual) or 0)), width = 600, height_in_lines = 2 },
        f:static_text { title = CorrectSummary.why(entry), width = 600, height_in_lines = 2 },
    }
    if #columns > 0 then
        rows[#rows + 1] = f:row(columns)
    else
        rows[#rows + 1] = f:static_text { title = Loc.text("Preview/Nothing", "Nothing needed repairing in this " ..
            "photo.") }
    end
    return f:column(rows)
end

--- Corrects the first photo of `group` (the `index`-th) into a temporary folder and shows the result.
-- Call from a task. Returns the result shown (nil when nothing was shown).
function CorrectPreview.run(props, group, index)
    local entry = group.entries[1]
    local choice = props[Groups.key(index)]
    local stages = BatchRun.stagesFor(props, choice)
    if choice == Groups.SKIP or #stages == 0 then
        LrDialogs.message(Loc.text("Preview/NoneTitle", "Nothing to preview"), choice == Groups.SKIP and
            Loc.text("Preview/Skipped", "This group will be skipped.") or
            Loc.text("Preview/NoStage", "No stage is selected for this group."), "info")
        return nil
    end
    local scope = LrProgressScope { title = Loc.text("Preview/Progress", "Previewing ^1", entry.fileName) }
    scope:setCancelable(true)
    local folder = Exporter.uniqueTempFolder()
    local source, exportFolder = entry.path, nil
    local result, err
    if not entry.isDng then
        local dng, folderOrMessage = Exporter.toDng(entry.photo, scope)
        if not dng then
            err = { message = folderOrMessage }
        else
            source, exportFolder = dng, folderOrMessage
        end
    end
    local job = { choice = choice, stages = stages, group = group,
        chosenByUser = choice ~= (group.best or Groups.RESIDUAL_ONLY) }
    if not err then
        local params = BatchRun.requestParams(job, props, entry)
        params.paths = Json.array({ source })
        params.output_dir, params.report_dir, params.force = folder, folder, true
        result, err = WorkerClient.call("image.correct", params, { scope = scope })
    end
    scope:done()
    local r = result and (Ui.value(result.results) or {})[1]
    local shown
    if r and r.ok then
        local f = LrView.osFactory()
        LrDialogs.presentModalDialog { title = Loc.text("Preview/Title", "Preview: ^1", entry.fileName),
            contents = CorrectPreview.view(f, { fileName = entry.fileName, result = r, job = job, group = group }),
            cancelVerb = "< exclude >", actionVerb = Loc.text("Preview/Close", "Close") }
        shown = r
    elseif not (err and err.cancelled) then
        local e = err or (r and Ui.value(r.error)) or {}
        LrDialogs.message(Loc.text("Preview/Failed", "The preview could not be made"),
            tostring(e.message or "?"), "warning")
    end
    LrFileUtils.delete(folder)
    if exportFolder then
        LrFileUtils.delete(exportFolder)
    end
    return shown
end

return CorrectPreview
