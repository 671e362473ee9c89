--[[----------------------------------------------------------------------------
Exporter.lua: a non-DNG raw becomes a DNG the worker can read.

Lightroom exports the photo as DNG into a fresh, unique temporary folder with
the settings of docs/lightroom-sdk.md §5: raw data preserved (no demosaicing), no
embedded original, no lossy compression, no fast-load data, and collisions
renamed so an export never stops mid-batch with a dialog. One photo per export
and per folder, so even a collision cannot occur. The caller deletes the folder.
------------------------------------------------------------------------------]]

local LrExportSession = import "LrExportSession"
local LrFileUtils = import "LrFileUtils"
local LrPathUtils = import "LrPathUtils"

local Loc = require "Loc"
local Log = require "Log"

local Exporter = {}

--- The export settings for a raw-preserving DNG written into `folder`.
function Exporter.settings(folder)
    return {
        LR_format = "DNG",
        LR_DNG_conversionMethod = "preserveRAW", -- keep the CFA data; never a linear (demosaiced) DNG
        LR_DNG_embedRAW = false,                 -- no embedded original raw file
        LR_DNG_lossyCompression = false,         -- lossy DNG is demosaiced-like and loses data
        LR_DNG_compressed = true,                -- lossless JPEG (the worker reads compression 7)
        LR_DNG_embedCache = false,               -- no fast-load data
        LR_DNG_previewSize = "large",
        LR_export_destinationType = "specificFolder",
        LR_export_destinationPathPrefix = folder,
        LR_export_useSubfolder = false,
        LR_collisionHandling = "rename",         -- never ask mid-batch
        LR_renamingTokensOn = false,
        LR_reimportExportedPhoto = false,
    }
end

local counter = 0

--- A new, empty folder under Lightroom's temp folder.
function Exporter.uniqueTempFolder()
    local base = LrPathUtils.child(LrPathUtils.getStandardFilePath("temp"), "HotPixels")
    LrFileUtils.createAllDirectories(base)
    counter = counter + 1
    local folder = LrFileUtils.chooseUniqueFileName(LrPathUtils.child(base,
        string.format("export-%d-%d-%04d", os.time(), counter, math.random(0, 9999))))
    LrFileUtils.createAllDirectories(folder)
    return folder
end

--- Exports `photo` as a raw DNG; returns dngPath, tempFolder or nil, message, cancelled. Call from a task,
-- outside any catalog write gate. As every stand-alone export in the SDK samples does, the export is
-- started with doExportOnCurrentTask() before its renditions are read; `scope` (an LrProgressScope)
-- cancels it (stopIfCanceled).
function Exporter.toDng(photo, scope)
    local folder = Exporter.uniqueTempFolder()
    local session = LrExportSession { photosToExport = { photo }, exportSettings = Exporter.settings(folder) }
    session:doExportOnCurrentTask()
    local dngPath, failure
    for _, rendition in session:renditions { progressScope = scope, stopIfCanceled = true } do
        local ok, pathOrMessage = rendition:waitForRender()
        if ok then
            dngPath = pathOrMessage
        else
            failure = pathOrMessage
        end
    end
    if not dngPath then
        LrFileUtils.delete(folder)
        if scope and scope:isCanceled() then
            return nil, Loc.text("Exporter/Cancelled", "The conversion to DNG was cancelled."), true
        end
        Log.warn("DNG export failed:", failure)
        return nil, Loc.text("Exporter/Failed", "Lightroom could not export this photo as DNG: ^1",
            tostring(failure or Loc.text("Exporter/NoFile", "no file was written")))
    end
    return dngPath, folder
end

--- DNG paths for the selected `photos`, each file once (non-DNG raws exported, cancellable through
-- `scope`); returns paths, tempFolders (the caller deletes them), problems (lines for people).
function Exporter.dngPaths(photos, scope)
    local paths, temps, problems, seen = {}, {}, {}, {}
    for _, photo in ipairs(photos) do
        local path = photo:getRawMetadata("path")
        if not seen[path] then
            seen[path] = true
            local format = photo:getRawMetadata("fileFormat")
            if not photo:checkPhotoAvailability() then
                problems[#problems + 1] = Loc.text("Exporter/Offline", "^1: offline or missing", path)
            elseif format == "DNG" then
                paths[#paths + 1] = path
            elseif format == "RAW" then
                local dng, folderOrMessage = Exporter.toDng(photo, scope)
                if dng then
                    paths[#paths + 1] = dng
                    temps[#temps + 1] = folderOrMessage
                else
                    problems[#problems + 1] = path .. ": " .. folderOrMessage
                end
            else
                problems[#problems + 1] = Loc.text("Exporter/NotRaw", "^1: not a raw photo", path)
            end
        end
    end
    return paths, temps, problems
end

return Exporter
