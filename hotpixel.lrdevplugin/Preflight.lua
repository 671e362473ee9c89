--[[----------------------------------------------------------------------------
Preflight.lua: everything checked before a batch starts, so the batch itself
never stops to ask.

  * no selection (explain) or a very large one (confirm);
  * virtual copies: each file is corrected once (stacked with the master);
  * offline or missing files (`checkPhotoAvailability`): skipped, with the reason;
  * non-raw photos (JPEG, TIFF…): skipped, they hold no CFA data;
  * photos this project already corrected: warn (skip them or correct again);
  * read-only folders: offer another folder (then no stack: Lightroom stacks
    only within one folder), or skip those photos;
  * free disk space in each output folder (and the temp folder for exports).

The result is a plan: entries to correct and photos skipped, each with a reason.
------------------------------------------------------------------------------]]

local LrDialogs = import "LrDialogs"
local LrFileUtils = import "LrFileUtils"
local LrPathUtils = import "LrPathUtils"
local LrProgressScope = import "LrProgressScope"
local LrTasks = import "LrTasks"

local Loc = require "Loc"
local Log = require "Log"
local Settings = require "Settings"
local Ui = require "Ui"
local WorkerClient = require "WorkerClient"

local Preflight = {}

-- Disk space ------------------------------------------------------------------------

--- Bytes in the file at `path` (0 when unreadable).
function Preflight.fileSize(path)
    local f = io.open(path, "rb")
    if not f then
        return 0
    end
    local size = f:seek("end") or 0
    f:close()
    return size
end

--- Free bytes on the volume that holds `folder`, or nil when Lightroom cannot say (then the check is
-- skipped and logged). The SDK way: LrFileUtils.volumeAttributes(path).fileSystemFreeSize; nothing is
-- run in a shell.
function Preflight.freeBytes(folder)
    if type(LrFileUtils.volumeAttributes) ~= "function" then
        Log.warn("this Lightroom has no LrFileUtils.volumeAttributes: free space not checked")
        return nil
    end
    local ok, attributes = LrTasks.pcall(LrFileUtils.volumeAttributes, folder)
    local free = ok and type(attributes) == "table" and tonumber(attributes.fileSystemFreeSize) or nil
    if not free then
        Log.warn("free space unknown for", folder, ok and "" or tostring(attributes))
    end
    return free
end

--- Whether files can be created in `folder`: a probe file is copied in and deleted again (the SDK's
-- isWritable speaks of files, so a folder is never asked directly).
function Preflight.canWrite(folder)
    if LrFileUtils.exists(folder) ~= "directory" then
        return false
    end
    local probe = LrFileUtils.chooseUniqueFileName(LrPathUtils.child(folder,
        string.format(".hotpixels-write-test-%d.tmp", math.random(0, 999999))))
    local ok = LrFileUtils.copy(LrPathUtils.child(_PLUGIN.path, "Info.lua"), probe)
    if ok then
        LrFileUtils.delete(probe)
        return true
    end
    return false
end

-- Steps ---------------------------------------------------------------------------------

local RAW_FORMATS = { RAW = true, DNG = true }

-- Each file once: virtual copies of one master share its file; the master is the stack target.
local function uniqueFiles(photos, plan)
    local byPath, entries, copies = {}, {}, 0
    for _, photo in ipairs(photos) do
        local path = photo:getRawMetadata("path")
        local isVirtual = photo:getRawMetadata("isVirtualCopy")
        local master = isVirtual and photo:getRawMetadata("masterPhoto") or photo
        local entry = byPath[path]
        if entry then
            copies = copies + 1
            if not isVirtual then
                entry.photo = photo -- the master's own settings win over a copy's
            end
        else
            entry = { path = path, photo = photo, stackTarget = master, fileName = LrPathUtils.leafName(path) }
            byPath[path] = entry
            entries[#entries + 1] = entry
        end
    end
    if copies > 0 then
        plan.notes[#plan.notes + 1] = string.format(Loc.text("Preflight/1", "%s share a file with another " ..
            "selected photo: each file is corrected once and stacked with its master photo."), Ui.count(copies,
                Loc.text("Preflight/2", "virtual copy"), Loc.text("Preflight/3", "virtual copies")))
    end
    return entries
end

local function skip(plan, entry, reason)
    entry.skipReason = reason
    plan.skipped[#plan.skipped + 1] = entry
end

local function checkAvailableAndRaw(entries, plan)
    local kept = {}
    for _, entry in ipairs(entries) do
        local format = entry.photo:getRawMetadata("fileFormat")
        entry.fileFormat = format
        entry.isDng = format == "DNG"
        if not entry.photo:checkPhotoAvailability() then
            skip(plan, entry, Loc.text("Preflight/4", "The file is offline or missing (is its drive connected?)."))
        elseif not RAW_FORMATS[format] then
            skip(plan, entry, string.format(Loc.text("Preflight/5", "A %s file holds no raw sensor data to " ..
                "correct."), tostring(format)))
        else
            kept[#kept + 1] = entry
        end
    end
    return kept
end

-- DNG sources are inspected now: CFA check, metadata for grouping, and "already corrected".
local function inspectDngs(entries, plan, suffix)
    local kept, corrected = {}, {}
    local scope = LrProgressScope { title = Loc.text("Preflight/6", "Checking the selected photos") }
    for i, entry in ipairs(entries) do
        scope:setPortionComplete(i - 1, #entries)
        if scope:isCanceled() then
            scope:done()
            return nil
        end
        local ok = true
        if entry.isDng then
            local info, err = WorkerClient.call("image.inspect", { path = entry.path })
            if not info then
                if err.name and err.name:match("^worker_") then
                    scope:done()
                    return nil, err
                end
                skip(plan, entry, err.message)
                ok = false
            else
                entry.info = info
                local meta = Ui.value(info.metadata) or {}
                entry.meta = meta
                if Ui.value(meta.corrected_by_hotpixels) then
                    corrected[#corrected + 1] = entry
                end
            end
        elseif suffix ~= "" and LrPathUtils.removeExtension(entry.fileName):sub(-#suffix) == suffix then
            corrected[#corrected + 1] = entry
        end
        if ok then
            kept[#kept + 1] = entry
        end
    end
    scope:done()
    return kept, nil, corrected
end

local function askAboutCorrected(corrected, entries, plan)
    if #corrected == 0 then
        return entries
    end
    local names = {}
    for i = 1, math.min(#corrected, 5) do
        names[i] = corrected[i].fileName
    end
    local answer = LrDialogs.confirm(
        string.format(Loc.text("Preflight/7", "%s already corrected by HotPixels"), Ui.count(#corrected,
            Loc.text("Preflight/8", "photo was"), Loc.text("Preflight/9", "photos were"))),
        table.concat(names, ", ") .. (#corrected > 5 and ", …" or "") ..
        Loc.text("Preflight/10", "\nCorrecting a corrected file again rarely helps. Skip them, or correct them " ..
            "again?"),
        Loc.text("Preflight/11", "Skip Them"), Loc.text("Preflight/12", "Cancel"), Loc.text("Preflight/13",
            "Correct Again"))
    if answer == "cancel" then
        return nil
    end
    local isCorrected = {}
    for _, entry in ipairs(corrected) do
        isCorrected[entry] = true
    end
    local kept = {}
    for _, entry in ipairs(entries) do
        if not isCorrected[entry] then
            kept[#kept + 1] = entry
        elseif answer == "other" then
            entry.force = true
            kept[#kept + 1] = entry
        else
            skip(plan, entry, Loc.text("Preflight/14", "Already corrected by HotPixels (you chose to skip it)."))
        end
    end
    return kept
end

local function checkFolders(entries, plan)
    local folders, order = {}, {}
    for _, entry in ipairs(entries) do
        local folder = LrPathUtils.parent(entry.path)
        entry.outputFolder = folder
        entry.stack = true
        if not folders[folder] then
            folders[folder] = { entries = {} }
            order[#order + 1] = folder
        end
        table.insert(folders[folder].entries, entry)
    end
    local kept = {}
    for _, folder in ipairs(order) do
        local group = folders[folder].entries
        if Preflight.canWrite(folder) then
            for _, entry in ipairs(group) do
                kept[#kept + 1] = entry
            end
        else
            local answer = LrDialogs.confirm(Loc.text("Preflight/15", "This folder is read-only: ") .. folder,
                string.format(Loc.text("Preflight/16", "%s from it cannot be corrected in place. Choose another " ..
                    "folder for the corrected files? Lightroom stacks photos only within one folder, so they " ..
                    "will not be stacked with their originals."), Ui.count(#group, "photo")),
                Loc.text("Preflight/17", "Choose Another Folder…"), Loc.text("Preflight/18", "Skip These Photos"))
            local chosen
            if answer == "ok" then
                local picked = LrDialogs.runOpenPanel { title = Loc.text("Preflight/19",
                    "Folder for the corrected files"),
                    canChooseFiles = false, canChooseDirectories = true, canCreateDirectories = true,
                    allowsMultipleSelection = false }
                chosen = picked and picked[1]
                if chosen and not Preflight.canWrite(chosen) then
                    LrDialogs.message(Loc.text("Preflight/20", "That folder is read-only too"), chosen, "warning")
                    chosen = nil
                end
            end
            for _, entry in ipairs(group) do
                if chosen then
                    entry.outputFolder = chosen
                    entry.stack = false
                    entry.stackNote = Loc.text("Preflight/21", "written to ") .. chosen .. Loc.text("Preflight/22",
                        " (the source folder is " ..
                        "read-only), so not stacked")
                    kept[#kept + 1] = entry
                else
                    skip(plan, entry, Loc.text("Preflight/23", "Its folder is read-only and no other folder was " ..
                        "chosen."))
                end
            end
        end
    end
    return kept
end

local function checkDiskSpace(entries)
    local need, order = {}, {}
    local tempNeed = 0
    for _, entry in ipairs(entries) do
        local size = Preflight.fileSize(entry.path)
        if not need[entry.outputFolder] then
            need[entry.outputFolder] = 0
            order[#order + 1] = entry.outputFolder
        end
        -- the corrected DNG is about the size of the source DNG (a converted raw's DNG: up to twice)
        need[entry.outputFolder] = need[entry.outputFolder] + size * (entry.isDng and 1.1 or 2)
        if not entry.isDng then
            tempNeed = math.max(tempNeed, size * 2) -- one exported DNG at a time, deleted after use
        end
    end
    if tempNeed > 0 then
        local temp = LrPathUtils.getStandardFilePath("temp")
        need[temp] = (need[temp] or 0) + tempNeed
        order[#order + 1] = temp
    end
    for _, folder in ipairs(order) do
        local free = Preflight.freeBytes(folder)
        if free and free < need[folder] then
            local answer = LrDialogs.confirm(Loc.text("Preflight/24", "Not enough free disk space"),
                string.format(Loc.text("Preflight/25", "The corrected files need about %.0f MB in %s, but only " ..
                    "%.0f MB are free."),
                    need[folder] / 1e6, folder, free / 1e6), Loc.text("Preflight/26", "Continue Anyway"),
                        Loc.text("Preflight/27", "Cancel"))
            if answer ~= "ok" then
                return false
            end
        end
    end
    return true
end

--- Checks `photos` before a batch; returns a plan {entries, skipped, notes} or nil when the user
-- cancelled (or there is nothing to do), nil, err when the worker failed. Call from a task.
function Preflight.run(photos, opts)
    opts = opts or {}
    local suffix = opts.suffix or Settings.get("suffix")
    if #photos == 0 then
        LrDialogs.message(Loc.text("Preflight/28", "No photos selected"), Loc.text("Preflight/29",
            "Select the photos to correct in the " ..
            "Library grid or the Filmstrip first."), "info")
        return nil
    end
    local large = Settings.get("largeSelection")
    if #photos > large then
        local answer = LrDialogs.confirm(string.format(Loc.text("Preflight/30", "Correct %d photos?"), #photos),
            Loc.text("Preflight/31", "This is a large batch; it runs in the background and can be cancelled from " ..
                "the progress bar."),
            Loc.text("Preflight/32", "Correct Them"), Loc.text("Preflight/33", "Cancel"))
        if answer ~= "ok" then
            return nil
        end
    end
    local plan = { entries = {}, skipped = {}, notes = {} }
    local entries = uniqueFiles(photos, plan)
    entries = checkAvailableAndRaw(entries, plan)
    local corrected, err
    entries, err, corrected = inspectDngs(entries, plan, suffix)
    if not entries then
        return nil, err
    end
    entries = askAboutCorrected(corrected, entries, plan)
    if not entries then
        return nil
    end
    entries = checkFolders(entries, plan)
    if #entries > 0 and not checkDiskSpace(entries) then
        return nil
    end
    plan.entries = entries
    if #entries == 0 then
        local reasons = {}
        for i = 1, math.min(#plan.skipped, 8) do
            reasons[i] = plan.skipped[i].fileName .. ": " .. plan.skipped[i].skipReason
        end
        LrDialogs.message(Loc.text("Preflight/34", "Nothing to correct"), table.concat(reasons, "\n"), "info")
        plan.nothingToDo = true
    end
    return plan
end

return Preflight
