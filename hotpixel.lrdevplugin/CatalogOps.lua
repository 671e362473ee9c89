--[[----------------------------------------------------------------------------
CatalogOps.lua: a corrected DNG joins the catalog next to its source.

Everything is read from the source before the write gate; inside the one gate
(never nested, nothing that yields) the file is added stacked above its source
(`addPhoto(path, source, "above")`; both lie in one folder, since Lightroom
stacks only within a folder) and receives the source's rating, colour label,
pick flag, keywords and develop settings.
------------------------------------------------------------------------------]]

local LrTasks = import "LrTasks"

local Log = require "Log"

local CatalogOps = {}

--- What is copied from the source, read outside any write gate.
function CatalogOps.readSource(photo)
    return {
        rating = photo:getRawMetadata("rating"),
        label = photo:getRawMetadata("colorNameForLabel"),
        pickStatus = photo:getRawMetadata("pickStatus"),
        keywords = photo:getRawMetadata("keywords") or {},
        develop = photo:getDevelopSettings(),
    }
end

--- Adds `outputPath` to `catalog`, stacked above `stackTarget` when given, with `copied` (from
-- readSource) applied. Returns the new LrPhoto or nil, message. Call from a task, outside a gate.
function CatalogOps.addCorrected(catalog, outputPath, stackTarget, copied)
    local added
    local ok, result = LrTasks.pcall(function()
        return catalog:withWriteAccessDo("HotPixels: add corrected photo", function()
            if stackTarget then
                added = catalog:addPhoto(outputPath, stackTarget, "above")
            else
                added = catalog:addPhoto(outputPath)
            end
            if copied.rating and copied.rating ~= 0 then
                added:setRawMetadata("rating", copied.rating)
            end
            if copied.label and copied.label ~= "" and copied.label ~= "none" then
                added:setRawMetadata("colorNameForLabel", copied.label)
            end
            if copied.pickStatus and copied.pickStatus ~= 0 then
                added:setRawMetadata("pickStatus", copied.pickStatus)
            end
            for _, keyword in ipairs(copied.keywords) do
                added:addKeyword(keyword)
            end
            if copied.develop and next(copied.develop) then
                added:applyDevelopSettings(copied.develop, "HotPixels: develop settings of the original")
            end
        end, { timeout = 60 })
    end)
    if not ok then
        Log.error("adding", outputPath, "to the catalog failed:", result)
        return nil, "Lightroom could not add the corrected file to the catalog: " .. tostring(result)
    end
    if result ~= nil and result ~= "executed" then
        return nil, "Lightroom's catalog stayed busy (" .. tostring(result) .. "); the corrected file is at " ..
            outputPath .. " and can be imported by hand."
    end
    return added
end

return CatalogOps
