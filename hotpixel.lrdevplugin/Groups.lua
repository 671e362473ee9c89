--[[----------------------------------------------------------------------------
Groups.lua: photos grouped by body, ISO and exposure, each group with the
profile the worker auto-matched (`profiles.match`) and why.

A DNG's metadata comes from the worker's `image.inspect` (the file's own tags);
a non-DNG raw's from the catalog. A group whose photos are not DNG yet is
matched by the worker after conversion ("auto").
------------------------------------------------------------------------------]]

local Loc = require "Loc"
local Ui = require "Ui"
local WorkerClient = require "WorkerClient"

local Groups = {}

Groups.RESIDUAL_ONLY = "__residual_only__"
Groups.SKIP = "__skip__"
Groups.AUTO = "auto"

local function describe(entry)
    local meta = entry.meta
    if meta then
        return {
            make = Ui.value(meta.make), model = Ui.value(meta.model), serial = Ui.value(meta.serial),
            iso = Ui.value(meta.iso), exposure = Ui.value(meta.exposure_s),
        }
    end
    local photo = entry.photo
    return {
        make = photo:getFormattedMetadata("cameraMake"), model = photo:getFormattedMetadata("cameraModel"),
        serial = photo:getFormattedMetadata("cameraSerialNumber"), iso = photo:getRawMetadata("isoSpeedRating"),
        exposure = photo:getRawMetadata("shutterSpeed"),
    }
end

local function groupTitle(d, n)
    local body = table.concat({ d.make or "", d.model or Loc.text("Groups/1", "unknown camera") }, " "):gsub("^%s+", "")
    if d.serial and d.serial ~= "" then
        body = body .. " #" .. d.serial
    end
    return string.format("%s · %s · %s · %s", body, Ui.iso(d.iso), Ui.exposure(d.exposure), Ui.count(n, "photo"))
end

--- Groups `entries` (from Preflight) by make/model/serial/ISO/exposure, in first-seen order.
function Groups.build(entries)
    local byKey, groups = {}, {}
    for _, entry in ipairs(entries) do
        local d = describe(entry)
        local key = table.concat({ tostring(d.make), tostring(d.model), tostring(d.serial), tostring(d.iso),
            tostring(d.exposure), entry.isDng and "dng" or "raw" }, "|")
        local group = byKey[key]
        if not group then
            group = { key = key, entries = {}, described = d, isDng = entry.isDng }
            byKey[key] = group
            groups[#groups + 1] = group
        end
        table.insert(group.entries, entry)
    end
    for i, group in ipairs(groups) do
        group.index = i
        group.title = groupTitle(group.described, #group.entries)
    end
    return groups
end

--- Asks the worker for each group's best profile and the compatible candidates.
-- Sets group.best, group.candidates ({name, explanation}), group.reason (why none matched).
function Groups.match(groups)
    for _, group in ipairs(groups) do
        group.candidates = {}
        if not group.isDng then
            group.best = Groups.AUTO
            group.explanation = Loc.text("Groups/2", "Matched automatically after Lightroom converts the photos " ..
                "to DNG.")
        else
            local result, err = WorkerClient.call("profiles.match", { path = group.entries[1].path })
            if not result then
                if err.name and err.name:match("^worker_") then
                    return nil, err
                end
                group.reason = err.message
            else
                for _, c in ipairs(Ui.value(result.candidates) or {}) do
                    group.candidates[#group.candidates + 1] = {
                        name = c.name, score = Ui.value(c.score), explanation = Ui.value(c.explanation) or "",
                    }
                end
                group.best = Ui.value(result.best)
                group.reason = Ui.value(result.reason)
                for _, c in ipairs(group.candidates) do
                    if c.name == group.best then
                        group.explanation = c.explanation
                    end
                end
            end
        end
        if not group.best then
            group.explanation = Loc.text("Groups/3", "No profile matches") .. (group.reason and (": " ..
                group.reason) or "") ..
                Loc.text("Groups/4", ". Residual detection alone still finds random hot pixels; or skip these " ..
                    "photos.")
        end
    end
    return groups
end

--- The popup items for one group: its compatible profiles, then residual-only and skip.
function Groups.popupItems(group)
    local items = {}
    if group.best == Groups.AUTO then
        items[#items + 1] = { title = Loc.text("Groups/5", "Automatic (best profile after conversion to DNG)"),
            value = Groups.AUTO }
    end
    for _, c in ipairs(group.candidates or {}) do
        local title = c.name
        if c.name == group.best then
            title = title .. Loc.text("Groups/6", " (best match)")
        end
        items[#items + 1] = { title = title, value = c.name }
    end
    items[#items + 1] = { title = Loc.text("Groups/7", "Residual detection only (no profile)"),
        value = Groups.RESIDUAL_ONLY }
    items[#items + 1] = { title = Loc.text("Groups/8", "Skip these photos"), value = Groups.SKIP }
    return items
end

--- The explanation shown under a group's popup for the chosen value.
function Groups.explain(group, value)
    if value == Groups.SKIP then
        return Loc.text("Groups/9", "These photos will be skipped") .. (group.best and "." or (": " ..
            group.explanation))
    elseif value == Groups.RESIDUAL_ONLY then
        return group.best and Loc.text("Groups/10", "No profile: only residual detection runs.") or group.explanation
    elseif value == group.best then
        return group.explanation or ""
    end
    for _, c in ipairs(group.candidates or {}) do
        if c.name == value then
            return c.explanation
        end
    end
    return ""
end

--- The property key for group `i`'s choice.
function Groups.key(i)
    return "profile_" .. i
end

return Groups
