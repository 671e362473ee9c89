--[[----------------------------------------------------------------------------
BatchRun.lua: "Correct Hot Pixels…" runs its batch (issue 16's one batch engine).

  * DNG photos: ONE `image.correct {paths}` per group and output folder (the
    photos of a group share body, ISO, exposure and every option). Each image's
    `$/result` notification is taken as it arrives: the bar moves per photo and
    the source's catalog data are read at once. Cancelling a group's bar sends
    `$/cancelRequest {id}` (finished photos are kept, the one in flight leaves
    nothing); cancelling one photo's bar sends `$/cancelRequest {id, path}`.
  * Other raws: Lightroom exports each as DNG first (Exporter.lua, cancellable),
    then it is corrected on its own into the source's folder.
  * An expired scan (1014 batch_expired, or -32602 on batch_id from an older
    worker) is retried once without batch_id.
  * At the end, every corrected file joins the catalog in ONE undo step and the
    new photos are selected (CatalogOps.addAll).
------------------------------------------------------------------------------]]

local LrApplication = import "LrApplication"
local LrFileUtils = import "LrFileUtils"
local LrPathUtils = import "LrPathUtils"
local LrProgressScope = import "LrProgressScope"

local BatchScan = require "BatchScan"
local CatalogOps = require "CatalogOps"
local Exporter = require "Exporter"
local Groups = require "Groups"
local Json = require "Json"
local Loc = require "Loc"
local Log = require "Log"
local Ui = require "Ui"
local WorkerClient = require "WorkerClient"

local BatchRun = {}

local CANCELLED = WorkerClient.CANCELLED

--- The stages sent for a group whose popup says `choice`.
function BatchRun.stagesFor(props, choice)
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

--- The work list: one job per file, with its group, profile choice and stages; skipped groups are reported.
function BatchRun.jobs(props, groups, summary)
    local jobs = {}
    for i, group in ipairs(groups) do
        local choice = props[Groups.key(i)]
        local stages = BatchRun.stagesFor(props, choice)
        for _, entry in ipairs(group.entries) do
            entry.group = group
            if choice == Groups.SKIP then
                entry.skipReason = Loc.text("Batch/SkipChosen", "You chose to skip this group. ^1",
                    group.best and "" or group.explanation)
                summary.skipped[#summary.skipped + 1] = entry
            elseif #stages == 0 then
                entry.skipReason = Loc.text("Batch/NoStage", "No stage selected for this group (residual " ..
                    "detection is off and there is no profile).")
                summary.skipped[#summary.skipped + 1] = entry
            else
                jobs[#jobs + 1] = { entry = entry, choice = choice, stages = stages, group = group,
                    chosenByUser = choice ~= (group.best or Groups.RESIDUAL_ONLY) }
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

local function notDone(summary, entry, why)
    if not entry.finished then
        entry.finished = true
        entry.notDoneReason = why
        summary.notDone[#summary.notDone + 1] = entry
    end
end

-- One image's result (from `$/result`, the final results[] or a cancel's data.results), taken once.
local function takeResult(summary, job, r)
    local entry = job.entry
    if entry.finished then
        return
    end
    entry.finished = true
    if type(r) ~= "table" then
        entry.finished = false
        return
    end
    if not r.ok then
        local e = Ui.value(r.error) or {}
        if e.code == CANCELLED or e.name == "cancelled" then
            entry.finished = false
            notDone(summary, entry, Loc.text("Batch/PhotoCancelled", "You cancelled this photo."))
        else
            fail(summary, entry, e.message or Loc.text("Batch/NoResult", "The worker returned no result for " ..
                "this photo."))
        end
        return
    end
    entry.result = r
    entry.job = job
    entry.copied = CatalogOps.readSource(entry.photo)
    summary.corrected[#summary.corrected + 1] = entry
end

-- Sends image.correct; an expired scan is retried once without batch_id.
local function requestCorrect(params, opts, scan)
    local result, err = WorkerClient.call("image.correct", params, opts)
    if not result and params.batch_id and BatchScan.forgotten(err) and not opts.cancelScope:isCanceled() then
        BatchScan.forget(scan, err)
        params.batch_id = nil
        result, err = WorkerClient.call("image.correct", params, opts)
    end
    return result, err
end

--- image.correct's parameters (without paths) for `job` ({choice, stages}) and `entry`.
function BatchRun.requestParams(job, props, entry)
    return {
        profile = job.choice == Groups.RESIDUAL_ONLY and Json.null or job.choice,
        stages = job.stages,
        sensitivity = props.sensitivity,
        output_dir = entry.outputFolder,
        suffix = props.suffix,
        force = entry.force or false,
    }
end

-- One request for `jobs` (DNG photos of one group, one output folder). Returns false when the whole
-- batch was cancelled.
local function correctGroup(jobs, props, batchScope, summary, progressEnd)
    local first = jobs[1]
    local groupScope = LrProgressScope { parent = batchScope, parentEndRange = progressEnd,
        caption = first.group.title }
    groupScope:setCancelable(true)
    local params = BatchRun.requestParams(first, props, first.entry)
    params.paths = Json.array()
    local photoScopes = {}
    for i, job in ipairs(jobs) do
        params.paths[i] = job.entry.path
        photoScopes[i] = LrProgressScope { parent = groupScope, caption = job.entry.fileName }
    end
    params.batch_id = BatchScan.idFor(summary.batch, first.entry.path)
    for _, job in ipairs(jobs) do
        -- where the worker will write this photo when the name is free (it never overwrites: else it numbers)
        job.expected = LrPathUtils.child(job.entry.outputFolder, LrPathUtils.removeExtension(job.entry.fileName) ..
            tostring(props.suffix) .. ".dng")
        job.expectedWasFree = LrFileUtils.exists(job.expected) == false
    end
    local handle, partCancelled = {}, {}
    local function checkPhotoCancels()
        for i, scope in ipairs(photoScopes) do
            if scope:isCanceled() and not partCancelled[i] and not jobs[i].entry.finished then
                partCancelled[i] = WorkerClient.cancelPart(handle, jobs[i].entry.path)
            end
        end
    end
    local done = 0
    local opts = {
        scope = groupScope, cancelScope = batchScope, handle = handle,
        onProgress = checkPhotoCancels,
        onResult = function(note)
            local index = tonumber(note.index)
            local job = index and jobs[index + 1]
            if job then
                Log.info("result arrived for", job.entry.path, "(", index + 1, "of", #jobs, ")")
                takeResult(summary, job, Ui.value(note.result))
                photoScopes[index + 1]:done()
                done = done + 1
                batchScope:setCaption(Loc.text("Batch/Caption", "^1 of ^2 photos of ^3", done, #jobs,
                    first.group.title))
            end
            checkPhotoCancels()
        end,
    }
    local result, err = requestCorrect(params, opts, summary.batch)
    if not result and err.name == "worker_stopped" and not batchScope:isCanceled() and not groupScope:isCanceled() then
        -- the worker died: it is restarted once (WorkerClient) and the photos it had not finished are sent
        -- again. It writes, reads and computes photos overlapped, so it may have finished a file without
        -- reporting it: a complete file at a name that was free before (the worker writes atomically) is
        -- taken as that photo's result rather than corrected a second time.
        for _, job in ipairs(jobs) do
            if not job.entry.finished and job.expectedWasFree and LrFileUtils.exists(job.expected) == "file" then
                Log.warn("the worker wrote", job.expected, "before it stopped; taking that file")
                job.entry.note = Loc.text("Batch/Unreported", "The worker stopped right after writing this photo, " ..
                    "so its counts are not known.")
                takeResult(summary, job, { path = job.entry.path, ok = true, output = job.expected,
                    counts = {}, profile = {} })
            end
        end
        local again = Json.array()
        for _, job in ipairs(jobs) do
            if not job.entry.finished then
                again[#again + 1] = job.entry.path
            end
        end
        Log.warn("the worker stopped during a group; sending", #again, "unfinished photos again:", err.message)
        local retryJobs = {}
        for _, job in ipairs(jobs) do
            if not job.entry.finished then
                retryJobs[#retryJobs + 1] = job
            end
        end
        local firstErr = err
        params.paths, params.batch_id = again, nil
        opts.onResult = function(note)
            local job = retryJobs[(tonumber(note.index) or -1) + 1]
            if job then
                takeResult(summary, job, Ui.value(note.result))
            end
        end
        if #again > 0 then
            result, err = WorkerClient.call("image.correct", params, opts)
            if not result and err.name ~= "worker_stopped" then
                err = firstErr
            end
        else
            result, err = { results = {} }, nil
        end
    end
    for _, scope in ipairs(photoScopes) do
        scope:done()
    end
    groupScope:done()
    local results = result and Ui.value(result.results)
        or (err and type(err.data) == "table" and Ui.value(err.data.results)) or {}
    for _, r in ipairs(results) do
        for _, job in ipairs(jobs) do
            if type(r) == "table" and r.path == job.entry.path then
                takeResult(summary, job, r)
            end
        end
    end
    if result then
        for _, job in ipairs(jobs) do
            if not job.entry.finished then
                fail(summary, job.entry, Loc.text("Batch/NoResult", "The worker returned no result for this photo."))
            end
        end
        return true
    end
    local cancelled = err.cancelled or groupScope:isCanceled() or batchScope:isCanceled()
    for _, job in ipairs(jobs) do
        if cancelled then
            notDone(summary, job.entry, batchScope:isCanceled() and Loc.text("Batch/Cancelled", "You cancelled " ..
                "the batch before this photo was done.") or Loc.text("Batch/GroupCancelled", "You cancelled this " ..
                "group before this photo was done."))
        elseif not job.entry.finished then
            fail(summary, job.entry, err.message)
        end
    end
    if cancelled then
        summary.cancelledGroups[#summary.cancelledGroups + 1] = first.group
    end
    return not batchScope:isCanceled()
end

-- A non-DNG raw: exported as DNG first, then corrected alone. Returns false when the batch was cancelled.
local function correctConverted(job, props, batchScope, summary, progressEnd)
    local entry = job.entry
    local child = LrProgressScope { parent = batchScope, parentEndRange = progressEnd, caption = entry.fileName }
    local dng, folderOrMessage, cancelled = Exporter.toDng(entry.photo, batchScope)
    if not dng then
        child:done()
        if cancelled then
            notDone(summary, entry, folderOrMessage)
            return false
        end
        fail(summary, entry, folderOrMessage)
        return true
    end
    local tempFolder = folderOrMessage
    local params = BatchRun.requestParams(job, props, entry)
    params.paths = Json.array({ dng })
    -- With "auto" and residual among the stages the worker itself runs residual detection alone when no
    -- profile matches the converted DNG (its result's profile says why); without residual the image fails
    -- with 2006 no_matching_profile, whose message the summary shows.
    local result, err = WorkerClient.call("image.correct", params, { scope = child, cancelScope = batchScope })
    child:done()
    LrFileUtils.delete(tempFolder)
    if not result then
        if err.cancelled or batchScope:isCanceled() then
            notDone(summary, entry, Loc.text("Batch/Cancelled", "You cancelled the batch before this photo was done."))
            return false
        end
        fail(summary, entry, err.message)
        return true
    end
    local r = (Ui.value(result.results) or {})[1]
    local used = r and Ui.value(r.profile) or {}
    if job.choice == Groups.AUTO and r and r.ok and not Ui.value(used.name) then
        entry.note = Loc.text("Batch/NoMatchConverted", "No profile matched (^1): residual " ..
            "detection only.", tostring(Ui.value(used.reason) or Ui.value(used.why) or "?"))
    end
    takeResult(summary, job, r)
    return true
end

-- DNG jobs in requests: one per group and output folder (and "correct again" flag), in job order.
local function requests(jobs)
    local byKey, list, converted = {}, {}, {}
    for _, job in ipairs(jobs) do
        if job.entry.isDng then
            local key = table.concat({ tostring(job.group.index), job.entry.outputFolder,
                tostring(job.entry.force or false) }, "|")
            if not byKey[key] then
                byKey[key] = {}
                list[#list + 1] = byKey[key]
            end
            table.insert(byKey[key], job)
        else
            converted[#converted + 1] = job
        end
    end
    return list, converted
end

--- Runs the batch in the calling task; returns the summary {corrected, failed, skipped, notDone,
-- cancelled, cancelledGroups, batch, added}. A scan counts as one more photo on the bar.
function BatchRun.run(context, props, groups, plan)
    local catalog = LrApplication.activeCatalog()
    local summary = { corrected = {}, failed = {}, skipped = {}, notDone = {}, cancelled = false,
        cancelledGroups = {}, props = props }
    for _, entry in ipairs(plan.skipped) do
        summary.skipped[#summary.skipped + 1] = entry
    end
    local jobs = BatchRun.jobs(props, groups, summary)
    local scope = LrProgressScope { title = Loc.text("Batch/Title", "Correcting hot pixels"),
        functionContext = context }
    scope:setCancelable(true)
    local series = BatchScan.candidates(props, jobs)
    local before = series and 1 or 0
    local units = #jobs + before
    if series then
        summary.batch = BatchScan.run(series, props, scope, before / units)
    end
    local list, converted = requests(jobs)
    local doneUnits = before
    local function stopped()
        return (summary.batch and summary.batch.cancelled) or scope:isCanceled()
    end
    for _, req in ipairs(list) do
        if stopped() then
            for _, job in ipairs(req) do
                notDone(summary, job.entry, Loc.text("Batch/Cancelled", "You cancelled the batch before this " ..
                    "photo was done."))
            end
        else
            scope:setPortionComplete(doneUnits, units)
            doneUnits = doneUnits + #req
            correctGroup(req, props, scope, summary, doneUnits / units)
        end
    end
    for _, job in ipairs(converted) do
        if stopped() then
            notDone(summary, job.entry, Loc.text("Batch/Cancelled", "You cancelled the batch before this photo " ..
                "was done."))
        else
            scope:setPortionComplete(doneUnits, units)
            scope:setCaption(job.entry.fileName)
            doneUnits = doneUnits + 1
            correctConverted(job, props, scope, summary, doneUnits / units)
        end
    end
    summary.cancelled = stopped() or #summary.cancelledGroups > 0
    BatchRun.addToCatalog(catalog, props, summary)
    scope:setPortionComplete(units, units)
    scope:done()
    return summary
end

--- The corrected files join the catalog in one undo step; failures move to summary.failed.
function BatchRun.addToCatalog(catalog, props, summary)
    local items = {}
    for _, entry in ipairs(summary.corrected) do
        local stackTarget = (props.stackWithOriginal and entry.stack) and entry.stackTarget or nil
        items[#items + 1] = { entry = entry, path = entry.result.output, stackTarget = stackTarget,
            copied = entry.copied }
    end
    summary.added = CatalogOps.addAll(catalog, items)
    local kept = {}
    for _, item in ipairs(items) do
        if item.added then
            item.entry.added = item.added
            kept[#kept + 1] = item.entry
        else
            fail(summary, item.entry, item.failure)
        end
    end
    summary.corrected = kept
end

return BatchRun
