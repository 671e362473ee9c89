--[[----------------------------------------------------------------------------
CatalogOps.lua: the corrected DNGs join the catalog next to their sources, the
Lightroom way.

Everything is read from each source as soon as its result arrives (outside any
write gate). When the batch ends, ONE write gate named "HotPixels: N photos"
(so Edit › Undo reads "Undo HotPixels: N photos" and takes the whole batch back)
adds every corrected file, stacked above its source when both lie in one folder
(`addPhoto(path, source, "above")`; Lightroom stacks only within a folder), with
the source's rating, colour label, pick flag, keywords, develop settings and
catalog-only metadata (title, caption, copyright, creator, headline, GPS and
place names, which the source file's XMP may not hold), and puts it in every
ordinary collection that holds the source. Nothing inside the gate yields and
gates never nest. Afterwards the new photos are selected (setSelectedPhotos).
------------------------------------------------------------------------------]]

local LrTasks = import "LrTasks"

local Loc = require "Loc"
local Log = require "Log"

local CatalogOps = {}

--- Catalog-only metadata copied to the corrected photo (LrPhoto raw metadata keys).
CatalogOps.TEXT_KEYS = { "title", "caption", "copyright", "creator", "headline", "gps", "gpsAltitude", "location",
    "city", "stateProvince", "country" }

local function collectionsOf(photo)
    if type(photo.getContainedCollections) ~= "function" then
        return {}
    end
    local ok, collections = LrTasks.pcall(function() return photo:getContainedCollections() end)
    if not ok or type(collections) ~= "table" then
        return {}
    end
    local out = {}
    for _, c in ipairs(collections) do
        local smart = type(c.isSmartCollection) == "function" and c:isSmartCollection()
        if not smart then
            out[#out + 1] = c
        end
    end
    return out
end

--- What is copied from the source, read outside any write gate.
function CatalogOps.readSource(photo)
    local copied = {
        rating = photo:getRawMetadata("rating"),
        label = photo:getRawMetadata("colorNameForLabel"),
        pickStatus = photo:getRawMetadata("pickStatus"),
        keywords = photo:getRawMetadata("keywords") or {},
        develop = photo:getDevelopSettings(),
        text = {},
        collections = collectionsOf(photo),
    }
    for _, key in ipairs(CatalogOps.TEXT_KEYS) do
        local ok, value = pcall(photo.getRawMetadata, photo, key)
        if ok and value ~= nil and value ~= "" then
            copied.text[key] = value
        end
    end
    return copied
end

-- Inside the gate: adds one file and applies what was copied; raises on failure.
local function addOne(catalog, item)
    local added
    if item.stackTarget then
        added = catalog:addPhoto(item.path, item.stackTarget, "above")
    else
        added = catalog:addPhoto(item.path)
    end
    local copied = item.copied
    if copied.rating and copied.rating ~= 0 then
        added:setRawMetadata("rating", copied.rating)
    end
    if copied.label and copied.label ~= "" and copied.label ~= "none" then
        added:setRawMetadata("colorNameForLabel", copied.label)
    end
    if copied.pickStatus and copied.pickStatus ~= 0 then
        added:setRawMetadata("pickStatus", copied.pickStatus)
    end
    for _, key in ipairs(CatalogOps.TEXT_KEYS) do
        if copied.text[key] ~= nil then
            local ok, err = pcall(added.setRawMetadata, added, key, copied.text[key])
            if not ok then
                Log.warn("could not copy", key, "to", item.path, ":", err)
            end
        end
    end
    for _, keyword in ipairs(copied.keywords) do
        added:addKeyword(keyword)
    end
    if copied.develop and next(copied.develop) then
        added:applyDevelopSettings(copied.develop, Loc.text("Catalog/DevelopHistory",
            "HotPixels: develop settings of the original"))
    end
    for _, collection in ipairs(copied.collections) do
        collection:addPhotos({ added })
    end
    return added
end

--- The undo step's name for `n` photos.
function CatalogOps.actionName(n)
    return Loc.text("Catalog/Undo", "HotPixels: ^1 ^2", n, n == 1 and "photo" or "photos")
end

--- Adds every item {path, stackTarget?, copied} in one write gate; sets item.added (an LrPhoto) or
-- item.failure (a message), then selects the added photos. Call from a task, outside a gate.
-- Returns the added photos.
function CatalogOps.addAll(catalog, items)
    if #items == 0 then
        return {}
    end
    local ok, result = LrTasks.pcall(function()
        return catalog:withWriteAccessDo(CatalogOps.actionName(#items), function()
            for _, item in ipairs(items) do
                local added, added_or_err = pcall(addOne, catalog, item)
                if added then
                    item.added = added_or_err
                else
                    Log.error("adding", item.path, "to the catalog failed:", added_or_err)
                    item.failure = Loc.text("Catalog/AddFailed", "Lightroom could not add the corrected file to " ..
                        "the catalog (^1); it is at ^2 and can be imported by hand.", tostring(added_or_err), item.path)
                end
            end
        end, { timeout = 60 })
    end)
    if not ok or (result ~= nil and result ~= "executed") then
        for _, item in ipairs(items) do
            item.added = nil
            item.failure = Loc.text("Catalog/Busy", "Lightroom's catalog stayed busy (^1); the corrected file is at " ..
                "^2 and can be imported by hand.", tostring(ok and result or result), item.path)
        end
        return {}
    end
    local photos = {}
    for _, item in ipairs(items) do
        photos[#photos + 1] = item.added
    end
    if #photos > 0 and type(catalog.setSelectedPhotos) == "function" then
        local selected, err = LrTasks.pcall(function() catalog:setSelectedPhotos(photos[1], photos) end)
        if not selected then
            Log.warn("could not select the corrected photos:", err)
        end
    end
    return photos
end

return CatalogOps
