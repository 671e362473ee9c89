--[[----------------------------------------------------------------------------
CorrectDialog.lua: "Correct Hot Pixels…".

  1. Preflight (Preflight.lua) turns the selection into files to correct.
  2. Photos are grouped by body, ISO and exposure; each group shows its
     auto-matched profile and why, changeable from a popup of compatible
     profiles (or "residual detection only", or skip).
  3. Stage checkboxes, the sensitivity slider, the output suffix and "stack
     with original" (on by default) apply to the whole batch; with 3 or more
     photos, so do "use frames of the same series" and "tracked mount".
  4. The batch runs in this task with a per-image progress bar and cancel:
     first, for a series, one `image.scanBatch` (BatchScan.lua), then one
     `image.correct` request per image. DNG sources are read in place;
     other raws are first exported as DNG (Exporter.lua) and checked to be CFA
     raw. Results are written into the source photo's folder and added to the
     catalog stacked above the source (CatalogOps.lua).
  5. A summary shows counts, reasons and a before/after crop.
------------------------------------------------------------------------------]]

local LrApplication = import "LrApplication"
local LrBinding = import "LrBinding"
local LrDialogs = import "LrDialogs"
local LrFileUtils = import "LrFileUtils"
local LrPathUtils = import "LrPathUtils"
local LrProgressScope = import "LrProgressScope"
local LrView = import "LrView"

local BatchScan = require "BatchScan"
local CatalogOps = require "CatalogOps"
local Exporter = require "Exporter"
local Groups = require "Groups"
local Json = require "Json"
local Log = require "Log"
local Preflight = require "Preflight"
local Settings = require "Settings"
local Ui = require "Ui"
local WorkerClient = require "WorkerClient"

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

-- The stage checkboxes; with enough photos for a series, the batch-evidence options under stage 3.
local function stagesBox(f, photoCount)
    local box = {
        title = "Stages",
        f:checkbox { title = "Subtract the dark model (needs a profile)", value = bind("stageDark") },
        f:checkbox { title = "Interpolate known hot pixels (needs a profile)", value = bind("stageHot") },
        f:checkbox { title = "Find residual hot pixels", value = bind("stageResidual") },
    }
    if photoCount >= BatchScan.MIN_PHOTOS then
        box[#box + 1] = f:row {
            f:spacer { width = 20 },
            f:checkbox { title = "Use frames of the same series (defects recur, stars move)",
                value = bind("batchEvidence"), enabled = bind("stageResidual") },
        }
        box[#box + 1] = f:row {
            f:spacer { width = 40 },
            f:checkbox { title = "Tracked mount (stars stay on the same pixels)", value = bind("trackedMount"),
                enabled = bind("batchEvidence") },
        }
    end
    return f:group_box(box)
end

--- The dialog's view tree for `groups` (bound to `props`).
function CorrectDialog.buildView(f, props, groups, plan)
    local groupRows = {}
    for i, group in ipairs(groups) do
        local key = Groups.key(i)
        groupRows[#groupRows + 1] = f:group_box {
            title = group.title,
            fill_horizontal = 1,
            f:row {
                f:static_text { title = "Profile:", width = LrView.share("label_width") },
                f:popup_menu { value = bind(key), items = Groups.popupItems(group), width_in_chars = 40 },
            },
            f:static_text { title = bind(key .. "_why"), width_in_chars = 60, height_in_lines = 2 },
        }
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
    return f:column {
        bind_to_object = props,
        spacing = f:dialog_spacing(),
        f:static_text { title = string.format("%s in %s.", Ui.count(#plan.entries, "photo"),
            Ui.count(#groups, "group")) },
        f:scrolled_view { width = 560, height = math.min(420, 110 * #groups + 20), groupList },
        stagesBox(f, #plan.entries),
        f:row {
            f:static_text { title = "Sensitivity:", width = LrView.share("label_width") },
            f:slider { value = bind("sensitivity"), min = 0, max = 1, width = 240 },
            f:static_text { title = bind { key = "sensitivity", transform = function(v)
                return string.format("%.2f", tonumber(v) or 0)
            end }, width_in_chars = 5 },
        },
        f:row {
            f:static_text { title = "Output suffix:", width = LrView.share("label_width") },
            f:edit_field { value = bind("suffix"), width_in_chars = 16 },
        },
        f:checkbox { title = "Stack with original", value = bind("stackWithOriginal") },
        f:static_text { title = table.concat(notes, "\n"), visible = #notes > 0, width_in_chars = 70 },
    }
end

-- The batch ---------------------------------------------------------------------------

local function stagesFor(props, choice)
    local stages = Json.array()
    if choice ~= Groups.RESIDUAL_ONLY then
        if props.stageDark then
            stages[#stages + 1] = "dark"
        end
        if props.stageHot then
            stages[#stages + 1] = "hot"
        end
    end
    if props.stageResidual then
        stages[#stages + 1] = "residual"
    end
    return stages
end

--- The work list: one job per file, with its profile choice and stages; skipped groups are reported.
function CorrectDialog.jobs(props, groups, summary)
    local jobs = {}
    for i, group in ipairs(groups) do
        local choice = props[Groups.key(i)]
        local stages = stagesFor(props, choice)
        for _, entry in ipairs(group.entries) do
            if choice == Groups.SKIP then
                entry.skipReason = "You chose to skip this group. " .. (group.best and "" or group.explanation)
                summary.skipped[#summary.skipped + 1] = entry
            elseif #stages == 0 then
                entry.skipReason = "No stage selected for this group (residual detection is off and there is " ..
                    "no profile)."
                summary.skipped[#summary.skipped + 1] = entry
            else
                jobs[#jobs + 1] = { entry = entry, choice = choice, stages = stages }
            end
        end
    end
    return jobs
end

local function fail(summary, entry, message)
    entry.failure = message
    summary.failed[#summary.failed + 1] = entry
    Log.warn("correcting", entry.path, "failed:", message)
end

-- One image.correct request; when the worker no longer knows the batch scan (an expired batch_id),
-- the image is sent again once without it, and the scan is not named again.
local function requestCorrect(params, opts, scan)
    local result, err = WorkerClient.call("image.correct", params, opts)
    if not result and params.batch_id and BatchScan.forgotten(err) and not opts.cancelScope:isCanceled() then
        BatchScan.forget(scan, err)
        params.batch_id = nil
        result, err = WorkerClient.call("image.correct", params, opts)
    end
    return result, err
end

-- Corrects one job, filling the batch's bar up to `progressEnd` (0..1); returns false when the batch
-- should stop (cancelled).
local function correctOne(job, props, catalog, batchScope, summary, progressEnd)
    local entry = job.entry
    local source, tempFolder = entry.path, nil
    if not entry.isDng then
        local dng, folderOrMessage = Exporter.toDng(entry.photo)
        if not dng then
            fail(summary, entry, folderOrMessage)
            return true
        end
        source, tempFolder = dng, folderOrMessage
        local info, err = WorkerClient.call("image.inspect", { path = dng })
        if not info then
            LrFileUtils.delete(tempFolder)
            fail(summary, entry, "The DNG Lightroom made from it cannot be corrected: " .. err.message)
            return not err.cancelled
        end
    end
    local child = LrProgressScope { parent = batchScope, parentEndRange = progressEnd, caption = entry.fileName }
    local params = {
        paths = { source },
        profile = job.choice == Groups.RESIDUAL_ONLY and Json.null or job.choice,
        stages = job.stages,
        sensitivity = props.sensitivity,
        output_dir = entry.outputFolder,
        suffix = props.suffix,
        force = entry.force or false,
        batch_id = BatchScan.idFor(summary.batch, entry.path),
    }
    local opts = { scope = child, cancelScope = batchScope }
    local result, err = requestCorrect(params, opts, summary.batch)
    local first = result and (Ui.value(result.results) or {})[1]
    local firstError = first and not first.ok and Ui.value(first.error)
    if job.choice == Groups.AUTO and firstError and firstError.name == "no_matching_profile" and props.stageResidual
        and not batchScope:isCanceled() then
        -- converted from another raw format, no profile matched: fall back to residual detection only
        params.profile, params.stages = Json.null, Json.array({ "residual" })
        result, err = WorkerClient.call("image.correct", params, opts)
        entry.note = "No profile matched (" .. tostring(firstError.message) .. "): residual detection only."
    end
    child:done()
    if tempFolder then
        LrFileUtils.delete(tempFolder)
    end
    if not result then
        if err.cancelled or batchScope:isCanceled() then
            summary.cancelled = true
            summary.notDone[#summary.notDone + 1] = entry
            return false
        end
        fail(summary, entry, err.message)
        return true
    end
    local r = (Ui.value(result.results) or {})[1]
    if not r or not r.ok then
        local e = r and Ui.value(r.error) or {}
        fail(summary, entry, e.message or "The worker returned no result for this photo.")
        return true
    end
    entry.result = r
    local used = Ui.value(r.profile) or {}
    if job.choice == Groups.AUTO and not Ui.value(used.name) then
        entry.note = entry.note or ("No profile matched (" .. tostring(Ui.value(used.reason) or "?") ..
            "): residual detection only.")
    end
    local stackTarget = (props.stackWithOriginal and entry.stack) and entry.stackTarget or nil
    local copied = CatalogOps.readSource(entry.photo)
    local added, message = CatalogOps.addCorrected(catalog, r.output, stackTarget, copied)
    if not added then
        fail(summary, entry, message)
        return true
    end
    entry.added = added
    summary.corrected[#summary.corrected + 1] = entry
    return true
end

--- Runs the batch in the calling task; returns the summary {corrected, failed, skipped, notDone, cancelled,
-- batch (BatchScan's scan table, when a scan ran)}. A scan counts as one more image on the progress bar.
function CorrectDialog.runBatch(context, props, groups, plan)
    local catalog = LrApplication.activeCatalog()
    local summary = { corrected = {}, failed = {}, skipped = {}, notDone = {}, cancelled = false }
    for _, entry in ipairs(plan.skipped) do
        summary.skipped[#summary.skipped + 1] = entry
    end
    local jobs = CorrectDialog.jobs(props, groups, summary)
    local scope = LrProgressScope { title = "Correcting hot pixels", functionContext = context }
    scope:setCancelable(true)
    local series = BatchScan.candidates(props, jobs)
    local before = series and 1 or 0
    local units = #jobs + before
    if series then
        summary.batch = BatchScan.run(series, props, scope, before / units)
        summary.cancelled = summary.batch.cancelled == true
    end
    for i, job in ipairs(jobs) do
        if summary.cancelled or scope:isCanceled() then
            summary.cancelled = true
            summary.notDone[#summary.notDone + 1] = job.entry
        else
            scope:setPortionComplete(before + i - 1, units)
            scope:setCaption(string.format("%d of %d: %s", i, #jobs, job.entry.fileName))
            if not correctOne(job, props, catalog, scope, summary, (before + i) / units) then
                summary.cancelled = true
            end
        end
    end
    scope:setPortionComplete(units, units)
    scope:done()
    return summary
end

-- The summary ---------------------------------------------------------------------------

local function listText(entries, field)
    local lines = {}
    for _, entry in ipairs(entries) do
        lines[#lines + 1] = entry.fileName .. ": " .. tostring(entry[field])
    end
    return table.concat(lines, "\n")
end

--- The summary's view tree.
function CorrectDialog.summaryView(f, summary)
    local rows = {
        f:static_text { title = string.format("Corrected: %d    Failed: %d    Skipped: %d%s", #summary.corrected,
            #summary.failed, #summary.skipped, summary.cancelled and
            string.format("    Not done (cancelled): %d", #summary.notDone) or "") },
    }
    if #summary.failed > 0 then
        rows[#rows + 1] = f:group_box { title = "Failed", f:static_text { title = listText(summary.failed, "failure"),
            width_in_chars = 80 } }
    end
    if #summary.skipped > 0 then
        rows[#rows + 1] = f:group_box { title = "Skipped", f:static_text {
            title = listText(summary.skipped, "skipReason"), width_in_chars = 80 } }
    end
    local noted = {}
    for _, entry in ipairs(summary.corrected) do
        if entry.note then
            noted[#noted + 1] = entry
        end
    end
    if #noted > 0 then
        rows[#rows + 1] = f:group_box { title = "Notes", f:static_text { title = listText(noted, "note"),
            width_in_chars = 80 } }
    end
    local series = BatchScan.summaryText(summary.batch, summary.corrected)
    if series then
        local _, breaks = series:gsub("\n", "")
        rows[#rows + 1] = f:group_box { title = "Frames of the same series", f:static_text { title = series,
            width_in_chars = 80, height_in_lines = breaks + 1 } }
    end
    local first = summary.corrected[1]
    if first then
        local r = first.result
        local counts = Ui.value(r.counts) or {}
        local profile = Ui.value(r.profile) or {}
        local fromSeries = tonumber(Ui.value(counts.batch)) or 0
        rows[#rows + 1] = f:static_text { title = string.format("%s → %s\nProfile: %s. %s\nFixed: %s by the dark " ..
            "model, %s known hot pixels, %s residual%s.", first.fileName, LrPathUtils.leafName(r.output),
            tostring(Ui.value(profile.name) or "none"), tostring(Ui.value(profile.why) or ""),
            tostring(Ui.value(counts.dark) or 0), tostring(Ui.value(counts.hot) or 0),
            tostring(Ui.value(counts.residual) or 0),
            fromSeries > 0 and string.format(", %d recurring across the series", fromSeries) or ""),
            width_in_chars = 80 }
        local previews = Ui.value(r.previews) or {}
        local before, after = Ui.picturePath(previews.before), Ui.picturePath(previews.after)
        if before and after then
            rows[#rows + 1] = f:row {
                f:column { f:static_text { title = "Before" }, f:picture { value = before } },
                f:column { f:static_text { title = "After" }, f:picture { value = after } },
            }
        end
    end
    return f:column(rows)
end

function CorrectDialog.showSummary(summary)
    local f = LrView.osFactory()
    LrDialogs.presentModalDialog { title = "Hot pixels corrected", contents = CorrectDialog.summaryView(f, summary),
        cancelVerb = "< exclude >", actionVerb = "OK" }
end

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
    return Ui.guard(context, "Correct Hot Pixels", function()
        local catalog = LrApplication.activeCatalog()
        local photos = catalog:getTargetPhotos()
        local plan, err = Preflight.run(photos)
        if not plan then
            if err then
                Ui.showWorkerError("The HotPixels worker is not available", err)
            end
            return nil
        end
        if plan.nothingToDo then
            return nil
        end
        local groups
        groups, err = Groups.match(Groups.build(plan.entries))
        if not groups then
            Ui.showWorkerError("The HotPixels worker is not available", err)
            return nil
        end
        local props = LrBinding.makePropertyTable(context)
        CorrectDialog.initProps(props, groups)
        local f = LrView.osFactory()
        local answer
        repeat
            answer = LrDialogs.presentModalDialog { title = "Correct Hot Pixels",
                contents = CorrectDialog.buildView(f, props, groups, plan), actionVerb = "Correct" }
            if answer == "ok" and not validSuffix(props.suffix) then
                LrDialogs.message("Choose another output suffix",
                    "The suffix must not be empty or contain / \\ : * ? \" < > |.", "warning")
                answer = "again"
            end
        until answer ~= "again"
        if answer ~= "ok" then
            return nil
        end
        savePrefs(props)
        local summary = CorrectDialog.runBatch(context, props, groups, plan)
        CorrectDialog.showSummary(summary)
        return summary
    end)
end

return CorrectDialog
