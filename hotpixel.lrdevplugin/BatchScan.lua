--[[----------------------------------------------------------------------------
BatchScan.lua: stage 3's batch evidence for "Correct Hot Pixels…".

A defect (hot pixel) stays on the same sensor site in every frame from one
body, while stars and the scene move between tripod frames (on a tracking
mount the stars stay and the ground moves). So before a batch of 3 or more
DNGs with residual detection on, one `image.scanBatch` request compares all of
them (the worker groups them by body and layout; a group of 3 or more frames
gives evidence), and every `image.correct` then names that scan (`batch_id`).

The scan helps and is never a condition: when it fails, or the worker has no
such method (-32601), the batch corrects each photo on its own and the summary
says so. When the worker has forgotten the scan (1014 batch_expired; an older
worker: -32602 on `batch_id`), that group is sent again once without it, and
the later groups go without it. Cancelling during the scan cancels the whole
batch.

Photos in other raw formats are converted to DNG one at a time during the
batch, so they are not part of the scan.
------------------------------------------------------------------------------]]

local LrProgressScope = import "LrProgressScope"

local Loc = require "Loc"
local Log = require "Log"
local Ui = require "Ui"
local WorkerClient = require "WorkerClient"

local BatchScan = {}

BatchScan.MIN_PHOTOS = 3 -- the worker finds evidence only in groups of 3 or more frames
BatchScan.CAPTION = Loc.text("BatchScan/1", "Looking for defects that recur across frames")

local METHOD_NOT_FOUND = -32601
BatchScan.BATCH_EXPIRED = 1014
local INVALID_OPTION = -32602

local function hasStage(stages, name)
    for _, stage in ipairs(stages) do
        if stage == name then
            return true
        end
    end
    return false
end

--- The jobs (from CorrectDialog.jobs) a scan compares: DNG sources with stage 3 on; nil when no scan
-- runs (the option is off, or fewer than MIN_PHOTOS such photos).
function BatchScan.candidates(props, jobs)
    if not props.batchEvidence then
        return nil
    end
    local series = {}
    for _, job in ipairs(jobs) do
        if job.entry.isDng and hasStage(job.stages, "residual") then
            series[#series + 1] = job
        end
    end
    if #series < BatchScan.MIN_PHOTOS then
        return nil
    end
    return series
end

local function failureReason(err)
    if err.code == METHOD_NOT_FOUND then
        return Loc.text("BatchScan/2", "this version of the HotPixels worker cannot compare frames (it has no " ..
            "image.scanBatch)")
    end
    return tostring(err.message)
end

-- The scan's answer as a scan table: which paths it covers, its groups and proposed profile additions.
local function accepted(scan, result)
    scan.batchId = Ui.value(result.batch_id)
    for _, group in ipairs(Ui.value(result.groups) or {}) do
        local frames = tonumber(Ui.value(group.frames)) or 0
        scan.groups = scan.groups + 1
        if frames >= BatchScan.MIN_PHOTOS then
            scan.series = scan.series + 1
        end
        scan.proposed = scan.proposed + (tonumber(Ui.value(group.proposed_profile_additions)) or 0)
        for _, path in ipairs(Ui.value(group.paths) or {}) do
            scan.covers[path] = true
        end
    end
    for _, skipped in ipairs(Ui.value(result.skipped) or {}) do
        local e = Ui.value(skipped.error) or {}
        scan.skipped[#scan.skipped + 1] = skipped.path
        Log.warn("the batch scan left out", skipped.path, ":", Ui.value(e.message))
    end
    scan.used = scan.batchId ~= nil
    if not scan.used then
        scan.note = Loc.text("BatchScan/3", "the worker's scan answer named no batch")
    end
    return scan
end

--- Runs `image.scanBatch` over the `series` jobs in a child of `batchScope` that fills the batch's
-- bar up to `parentEndRange` (0..1). Returns a scan table {used, batchId, covers = {path = true},
-- groups, series, proposed, skipped, note, cancelled, photos}; `note` says why evidence is not used.
function BatchScan.run(series, props, batchScope, parentEndRange)
    local scan = { used = false, covers = {}, groups = 0, series = 0, proposed = 0, skipped = {},
        photos = #series }
    local paths = {}
    for i, job in ipairs(series) do
        paths[i] = job.entry.path
    end
    batchScope:setCaption(BatchScan.CAPTION)
    local child = LrProgressScope { parent = batchScope, parentEndRange = parentEndRange, caption = BatchScan.CAPTION }
    local result, err = WorkerClient.call("image.scanBatch", { paths = paths, tracked = props.trackedMount == true },
        { scope = child, cancelScope = batchScope })
    child:done()
    if result then
        return accepted(scan, result)
    end
    if err.cancelled or batchScope:isCanceled() then
        scan.cancelled = true
        return scan
    end
    scan.note = failureReason(err)
    Log.warn("the batch scan failed, correcting each photo on its own:", err.code, err.name, err.message)
    return scan
end

--- The `batch_id` to send with `path`'s image.correct, or nil (no scan, a failed or forgotten one,
-- or a path the scan left out).
function BatchScan.idFor(scan, path)
    if scan and scan.used and scan.covers[path] then
        return scan.batchId
    end
    return nil
end

--- Whether an image.correct error says the worker no longer knows the scan (1014, or -32602 on batch_id).
function BatchScan.forgotten(err)
    local data = err and type(err.data) == "table" and err.data or {}
    -- 1014 batch_expired (the contract of issue 16); older workers: -32602 naming the batch_id parameter
    return err ~= nil and (err.code == BatchScan.BATCH_EXPIRED or err.name == "batch_expired"
        or (err.code == INVALID_OPTION and data.param == "batch_id"))
end

--- Stops using the scan after the worker forgot it (`err`); the later photos go without batch_id.
function BatchScan.forget(scan, err)
    Log.warn("the worker no longer knows batch", scan.batchId, ":", err and err.message)
    scan.used = false
    scan.forgotten = true
end

--- Sites repaired because of batch evidence: the sum of counts.batch over the corrected entries.
function BatchScan.repaired(corrected)
    local total = 0
    for _, entry in ipairs(corrected) do
        local counts = entry.result and Ui.value(entry.result.counts) or {}
        total = total + (tonumber(Ui.value(counts.batch)) or 0)
    end
    return total
end

local function evidenceText(scan, corrected)
    local lines = {}
    local repaired = BatchScan.repaired(corrected)
    if scan.series == 0 then
        lines[#lines + 1] = string.format(Loc.text("BatchScan/4", "The scan compared %s but found no series of %d " ..
            "or more frames from one camera, so it had no recurring defects to repair."), Ui.count(scan.photos,
                "photo"),
            BatchScan.MIN_PHOTOS)
    else
        lines[#lines + 1] = string.format(Loc.text("BatchScan/5", "%s repaired because %s on the same spot in " ..
            "every frame of the series (%s compared)."), Ui.count(repaired, Loc.text("BatchScan/6", "hot pixel was"),
                Loc.text("BatchScan/7", "hot pixels were")),
            repaired == 1 and Loc.text("BatchScan/8", "it recurs") or Loc.text("BatchScan/9", "they recur"),
                Ui.count(scan.photos, "photo"))
        if scan.proposed > 0 then
            lines[#lines + 1] = string.format(Loc.text("BatchScan/10", "The scan proposes adding %s to the " ..
                "camera's profile: %s in every frame but the profile does not list %s."), Ui.count(scan.proposed,
                    Loc.text("BatchScan/11", "hot pixel")),
                scan.proposed == 1 and Loc.text("BatchScan/12", "it recurs") or Loc.text("BatchScan/13", "they recur"),
                    scan.proposed == 1 and "it" or "them")
        else
            lines[#lines + 1] = Loc.text("BatchScan/14", "The scan proposes no additions to the camera's profile.")
        end
    end
    if #scan.skipped > 0 then
        lines[#lines + 1] = string.format(Loc.text("BatchScan/15", "%s could not be compared (see the log)."),
            Ui.count(#scan.skipped, "photo"))
    end
    if scan.forgotten then
        lines[#lines + 1] = Loc.text("BatchScan/16", "Partway through, the worker no longer had the scan's " ..
            "findings: the photos from then on were corrected each on its own.")
    end
    return table.concat(lines, "\n")
end

--- The summary's words about the series (nil when no scan ran or it was cancelled).
function BatchScan.summaryText(scan, corrected)
    if not scan or scan.cancelled then
        return nil
    end
    if scan.batchId == nil then
        return Loc.text("BatchScan/17", "The frames were not compared with each other (batch evidence was not " ..
            "used): ") ..
            tostring(scan.note) .. Loc.text("BatchScan/18", ". Each photo was corrected on its own.")
    end
    return evidenceText(scan, corrected)
end

return BatchScan
