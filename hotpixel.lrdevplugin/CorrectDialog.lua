--[[----------------------------------------------------------------------------
CorrectDialog.lua: "Correct Hot Pixels…".

  1. Preflight (Preflight.lua) turns the selection into files to correct.
  2. Photos are grouped by body, ISO and exposure; each group shows its
     auto-matched profile and why, changeable from a popup of compatible
     profiles (or "residual detection only", or skip).
  3. Stage checkboxes, the sensitivity slider, the output suffix and "stack
     with original" (on by default) apply to the whole batch; with 3 or more
     photos, so do "use frames of the same series" and "tracked mount".
  4. The batch runs in this task (BatchRun.lua) with a bar per group and per
     photo, each cancellable: first, for a series, one `image.scanBatch`
     (BatchScan.lua), then ONE `image.correct {paths}` request per group and
     output folder, each photo's `$/result` taken as it arrives. DNG sources
     are read in place; other raws are first exported as DNG (Exporter.lua),
     one request each. Results are written into the source photo's folder and
     added to the catalog in one undo step, stacked above the source and
     selected (CatalogOps.lua).
  5. A summary (CorrectSummary.lua) shows counts, reasons per group, and the
     before/after crops of every corrected photo.
------------------------------------------------------------------------------]]

local LrApplication = import "LrApplication"
local LrBinding = import "LrBinding"
local LrDialogs = import "LrDialogs"
local LrTasks = import "LrTasks"
local LrView = import "LrView"

local BatchRun = require "BatchRun"
local BatchScan = require "BatchScan"
local CorrectPreview = require "CorrectPreview"
local CorrectSummary = require "CorrectSummary"
local Groups = require "Groups"
local Loc = require "Loc"
local Preflight = require "Preflight"
local Settings = require "Settings"
local Ui = require "Ui"

local bind = LrView.bind

local CorrectDialog = {}

-- The dialog ----------------------------------------------------------------------------

--- Fills `props` with the batch settings (from preferences) and each group's default choice.
function CorrectDialog.initProps(props, groups)
    props.stageDark = Settings.get("stageDark")
    props.stageHot = Settings.get("stageHot")
    props.stageResidual = Settings.get("stageResidual")
    props.sensitivity = Settings.get("sensitivity")
    props.suffix = Settings.get("suffix")
    props.stackWithOriginal = Settings.get("stackWithOriginal")
    props.batchEvidence = Settings.get("batchEvidence")
    props.trackedMount = Settings.get("trackedMount")
    for i, group in ipairs(groups) do
        local key = Groups.key(i)
        props[key] = group.best or Groups.RESIDUAL_ONLY
        props[key .. "_why"] = Groups.explain(group, props[key])
        props:addObserver(key, function(_, _, value)
            props[key .. "_why"] = Groups.explain(group, value)
        end)
    end
end

CorrectDialog.THUMB_PX = 96     -- each group's first photo, as Lightroom draws it (catalog_photo)
CorrectDialog.LIST_WIDTH_PX = 620

-- The stage checkboxes; with enough photos for a series, the batch-evidence options under stage 3.
local function stagesBox(f, photoCount)
    local box = {
        title = Loc.text("Correct/Stages", "Stages"),
        f:checkbox { title = Loc.text("Correct/StageDark", "Subtract the dark model (needs a profile)"),
            value = bind("stageDark") },
        f:checkbox { title = Loc.text("Correct/StageHot", "Interpolate known hot pixels (needs a profile)"),
            value = bind("stageHot") },
        f:checkbox { title = Loc.text("Correct/StageResidual", "Find residual hot pixels"),
            value = bind("stageResidual") },
    }
    if photoCount >= BatchScan.MIN_PHOTOS then
        box[#box + 1] = f:row {
            f:spacer { width = 20 },
            f:checkbox { title = Loc.text("Correct/Series", "Use frames of the same series (defects recur, stars " ..
                "move)"), value = bind("batchEvidence"), enabled = bind("stageResidual") },
        }
        box[#box + 1] = f:row {
            f:spacer { width = 40 },
            f:checkbox { title = Loc.text("Correct/Tracked", "Tracked mount (stars stay on the same pixels)"),
                value = bind("trackedMount"), enabled = bind("batchEvidence") },
        }
    end
    return f:group_box(box)
end

-- One group: its first photo's thumbnail, the profile popup, why, and a preview of one photo.
local function groupBox(f, props, group, i)
    local key = Groups.key(i)
    return f:group_box {
        title = group.title,
        fill_horizontal = 1,
        f:row {
            f:catalog_photo { photo = group.entries[1].photo, width = CorrectDialog.THUMB_PX,
                height = CorrectDialog.THUMB_PX },
            f:column {
                spacing = f:label_spacing(),
                f:row {
                    f:static_text { title = Loc.text("Correct/Profile", "Profile:"), width = 60 },
                    f:popup_menu { value = bind(key), items = Groups.popupItems(group), width = 330 },
                },
                f:static_text { title = bind(key .. "_why"), width = 460, height_in_lines = 2 },
                f:push_button { title = Loc.text("Correct/Preview", "Preview One Photo…"),
                    action = function()
                        LrTasks.startAsyncTask(function() CorrectPreview.run(props, group, i) end,
                            "HotPixels preview")
                    end },
            },
        },
    }
end

--- The dialog's view tree for `groups` (bound to `props`).
function CorrectDialog.buildView(f, props, groups, plan)
    local groupRows = {}
    for i, group in ipairs(groups) do
        groupRows[#groupRows + 1] = groupBox(f, props, group, i)
    end
    local notes = {}
    for _, note in ipairs(plan.notes or {}) do
        notes[#notes + 1] = note
    end
    for _, entry in ipairs(plan.skipped or {}) do
        notes[#notes + 1] = entry.fileName .. ": " .. entry.skipReason
    end
    groupRows.spacing = f:control_spacing()
    local groupList = f:column(groupRows)
    local groupHeight = CorrectDialog.THUMB_PX + 40
    return f:column {
        bind_to_object = props,
        spacing = f:dialog_spacing(),
        f:static_text { title = Loc.text("Correct/Count", "^1 in ^2.", Ui.count(#plan.entries, "photo"),
            Ui.count(#groups, "group")) },
        f:scrolled_view { width = CorrectDialog.LIST_WIDTH_PX,
            height = math.min(3 * groupHeight, groupHeight * #groups + 20), groupList },
        stagesBox(f, #plan.entries),
        f:row {
            f:static_text { title = Loc.text("Correct/Sensitivity", "Sensitivity:"), width = 100 },
            f:slider { value = bind("sensitivity"), min = 0, max = 1, width = 240 },
            f:static_text { title = bind { key = "sensitivity", transform = function(v)
                return string.format("%.2f", tonumber(v) or 0)
            end }, width = 40 },
        },
        f:row {
            f:static_text { title = Loc.text("Correct/Suffix", "Output suffix:"), width = 100 },
            f:edit_field { value = bind("suffix"), width = 140 },
        },
        f:checkbox { title = Loc.text("Correct/Stack", "Stack with original"), value = bind("stackWithOriginal") },
        f:static_text { title = table.concat(notes, "\n"), visible = #notes > 0, width = CorrectDialog.LIST_WIDTH_PX },
    }
end

--- The batch and its summary live in BatchRun.lua and CorrectSummary.lua.
CorrectDialog.runBatch = BatchRun.run
CorrectDialog.jobs = BatchRun.jobs

-- The menu command ----------------------------------------------------------------------

local function savePrefs(props)
    local prefs = Settings.prefs()
    for _, key in ipairs({ "stageDark", "stageHot", "stageResidual", "sensitivity", "suffix", "stackWithOriginal",
        "batchEvidence", "trackedMount" }) do
        prefs[key] = props[key]
    end
end

local function validSuffix(suffix)
    return type(suffix) == "string" and suffix ~= "" and not suffix:find('[/\\:%*%?"<>|]')
end

--- The whole command, in the calling task. Returns the summary (nil when nothing ran).
function CorrectDialog.run(context)
    return Ui.guard(context, Loc.text("Correct/Title", "Correct Hot Pixels"), function()
        local catalog = LrApplication.activeCatalog()
        local photos = catalog:getTargetPhotos()
        local plan, err = Preflight.run(photos)
        if not plan then
            if err then
                Ui.showWorkerError(Loc.text("Worker/Unavailable", "The HotPixels worker is not available"), err)
            end
            return nil
        end
        if plan.nothingToDo then
            return nil
        end
        local groups
        groups, err = Groups.match(Groups.build(plan.entries))
        if not groups then
            Ui.showWorkerError(Loc.text("Worker/Unavailable", "The HotPixels worker is not available"), err)
            return nil
        end
        local props = LrBinding.makePropertyTable(context)
        CorrectDialog.initProps(props, groups)
        local f = LrView.osFactory()
        local answer
        repeat
            answer = LrDialogs.presentModalDialog { title = Loc.text("Correct/Title", "Correct Hot Pixels"),
                contents = CorrectDialog.buildView(f, props, groups, plan),
                actionVerb = Loc.text("Correct/Action", "Correct") }
            if answer == "ok" and not validSuffix(props.suffix) then
                LrDialogs.message(Loc.text("Correct/BadSuffix", "Choose another output suffix"),
                    Loc.text("Correct/BadSuffixWhy", "The suffix must not be empty or contain / \\ : * ? \" < > |."),
                    "warning")
                answer = "again"
            end
        until answer ~= "again"
        if answer ~= "ok" then
            return nil
        end
        savePrefs(props)
        local summary = BatchRun.run(context, props, groups, plan)
        CorrectSummary.show(context, summary)
        return summary
    end)
end

return CorrectDialog
