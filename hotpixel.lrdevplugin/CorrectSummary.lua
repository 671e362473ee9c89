--[[----------------------------------------------------------------------------
CorrectSummary.lua: the summary after "Correct Hot Pixels…".

  * counts, then failures, skips and photos not done, each with its reason;
  * per group, which profile was used and why, in words (never a CLI flag);
  * notes: a photo written to another folder says where and why it is not stacked;
  * the series evidence (BatchScan.summaryText) and, when the batch found
    recurring hot pixels its profile lacks, one button "Add N newly found hot
    pixels to profile X" (profiles.addSites);
  * before/after crops of each corrected photo, paged with Previous/Next.
------------------------------------------------------------------------------]]

local LrBinding = import "LrBinding"
local LrDialogs = import "LrDialogs"
local LrPathUtils = import "LrPathUtils"
local LrTasks = import "LrTasks"
local LrView = import "LrView"

local BatchScan = require "BatchScan"
local Groups = require "Groups"
local Loc = require "Loc"
local Log = require "Log"
local Ui = require "Ui"
local WorkerClient = require "WorkerClient"

local bind = LrView.bind

local CorrectSummary = {}

CorrectSummary.CROP_PX = 192 -- each preview crop as shown (48 raw sites enlarged 4x, nearest neighbour)

--- Why this photo's profile (or none) was used, in words.
function CorrectSummary.why(entry)
    local job = entry.job or {}
    local group = job.group or entry.group or {}
    local used = Ui.value((entry.result or {}).profile) or {}
    local name = Ui.value(used.name)
    if job.choice == Groups.RESIDUAL_ONLY then
        if group.best then
            return Loc.text("Summary/WhyResidualChosen", "You chose residual detection only (no profile).")
        end
        return Loc.text("Summary/WhyNoMatch", "No profile matches these photos^1, so only residual detection ran.",
            group.reason and (": " .. group.reason) or "")
    end
    if job.choice == Groups.AUTO then
        if name then
            return Loc.text("Summary/WhyAutoConverted", "“^1” matched automatically: ^2", name,
                tostring(Ui.value(used.why) or ""))
        end
        return entry.note or Loc.text("Summary/WhyNoMatchConverted", "No profile matched: residual detection only.")
    end
    local explanation = Groups.explain(group, job.choice)
    if job.chosenByUser then
        return Loc.text("Summary/WhyUserChose", "You chose “^1” in the Correct dialog^2", tostring(job.choice),
            explanation ~= "" and (" (" .. explanation .. ")") or ".")
    end
    return Loc.text("Summary/WhyAuto", "“^1” matched automatically: ^2", tostring(job.choice), explanation)
end

--- The recurring hot pixels the applied profiles lack: {profile name = {sites = {...}, count}}, from each
-- result's batch.proposed_profile_additions (sites deduplicated by y, x).
function CorrectSummary.proposals(corrected)
    local byProfile, order = {}, {}
    for _, entry in ipairs(corrected) do
        local r = entry.result or {}
        local name = Ui.value((Ui.value(r.profile) or {}).name)
        local batch = Ui.value(r.batch) or {}
        local sites = Ui.value(batch.proposed_profile_additions)
        if name and type(sites) == "table" then
            local p = byProfile[name]
            if not p then
                p = { name = name, sites = {}, seen = {}, paths = {} }
                byProfile[name] = p
                order[#order + 1] = p
            end
            p.paths[#p.paths + 1] = entry.path
            for _, site in ipairs(sites) do
                local key = tostring(site.y) .. ":" .. tostring(site.x)
                if not p.seen[key] then
                    p.seen[key] = true
                    p.sites[#p.sites + 1] = { y = site.y, x = site.x, excess_dn = Ui.value(site.excess_dn),
                        frames_hit = Ui.value(site.frames_hit) }
                end
            end
        end
    end
    local out = {}
    for _, p in ipairs(order) do
        if #p.sites > 0 then
            out[#out + 1] = p
        end
    end
    return out
end

--- Sends profiles.addSites for one proposal; returns the answer's message for the user.
function CorrectSummary.addSites(proposal)
    local result, err = WorkerClient.call("profiles.addSites", { name = proposal.name, sites = proposal.sites,
        paths = proposal.paths })
    if not result then
        Log.warn("profiles.addSites failed:", err and err.message)
        return Loc.text("Summary/AddFailed", "The profile was not changed: ^1", tostring(err and err.message))
    end
    proposal.added = tonumber(Ui.value(result.added)) or 0
    return Loc.text("Summary/Added", "Added ^1 hot pixels to “^2”.", proposal.added, proposal.name)
end

local function listText(entries, field)
    local lines = {}
    for _, entry in ipairs(entries) do
        lines[#lines + 1] = entry.fileName .. ": " .. tostring(entry[field])
    end
    return table.concat(lines, "\n")
end

local function box(f, title, text)
    local _, breaks = text:gsub("\n", "")
    return f:group_box { title = title, fill_horizontal = 1,
        f:static_text { title = text, width = 640, height_in_lines = math.min(breaks + 1, 8) } }
end

-- The before/after crops of every corrected photo, one page per photo (props.page, 1-based).
local function picturePages(f, props, corrected)
    local pages = {}
    for _, entry in ipairs(corrected) do
        local previews = Ui.value(entry.result.previews) or {}
        local before, after = Ui.picturePath(previews.before), Ui.picturePath(previews.after)
        do
            local counts = Ui.value(entry.result.counts) or {}
            pages[#pages + 1] = { before = before, after = after, entry = entry,
                caption = Loc.text("Summary/PageCaption", "^1 → ^2: ^3 by the dark model, ^4 known hot pixels, " ..
                    "^5 residual^6", entry.fileName, LrPathUtils.leafName(entry.result.output),
                    tostring(Ui.value(counts.dark) or 0), tostring(Ui.value(counts.hot) or 0),
                    tostring(Ui.value(counts.residual) or 0), (tonumber(Ui.value(counts.batch)) or 0) > 0 and
                    Loc.text("Summary/PageSeries", ", ^1 recurring across the series", counts.batch) or "") }
        end
    end
    if #pages == 0 then
        return nil, pages
    end
    props.page = 1
    local function field(name)
        return bind { key = "page", transform = function(i)
            local page = pages[tonumber(i) or 1] or pages[1]
            return page[name] or ""
        end }
    end
    local size = CorrectSummary.CROP_PX
    return f:column {
        spacing = f:control_spacing(),
        f:static_text { title = field("caption"), width = 640, height_in_lines = 2 },
        f:row {
            f:column { f:static_text { title = Loc.text("Summary/Before",
                "Before (enlarged 4x, repaired sites marked)"), width = size, height_in_lines = 2 },
                f:picture { value = field("before"), width = size, height = size } },
            f:column { f:static_text { title = Loc.text("Summary/After", "After"), width = size, height_in_lines = 2 },
                f:picture { value = field("after"), width = size, height = size } },
        },
        f:row {
            f:push_button { title = Loc.text("Summary/Previous", "◀ Previous"), enabled = bind { key = "page",
                transform = function(i) return (tonumber(i) or 1) > 1 end },
                action = function() props.page = math.max(1, props.page - 1) end },
            f:static_text { title = bind { key = "page", transform = function(i)
                return Loc.text("Summary/PageOf", "Photo ^1 of ^2", i, #pages)
            end }, width_in_chars = 14 },
            f:push_button { title = Loc.text("Summary/Next", "Next ▶"), enabled = bind { key = "page",
                transform = function(i) return (tonumber(i) or 1) < #pages end },
                action = function() props.page = math.min(#pages, props.page + 1) end },
        },
    }, pages
end

local function profileReasons(corrected)
    local lines, seen = {}, {}
    for _, entry in ipairs(corrected) do
        local group = (entry.job or {}).group or entry.group
        local key = group or entry
        if not seen[key] then
            seen[key] = true
            lines[#lines + 1] = (group and group.title or entry.fileName) .. ": " .. CorrectSummary.why(entry)
        end
    end
    return table.concat(lines, "\n")
end

--- The summary's view tree (bound to props).
function CorrectSummary.view(f, props, summary)
    local rows = {
        bind_to_object = props,
        spacing = f:control_spacing(),
        f:static_text { title = Loc.text("Summary/Counts", "Corrected: ^1    Failed: ^2    Skipped: ^3^4",
            #summary.corrected, #summary.failed, #summary.skipped, #summary.notDone > 0 and
            Loc.text("Summary/NotDone", "    Not done (cancelled): ^1", #summary.notDone) or "") },
    }
    if #summary.corrected > 0 then
        rows[#rows + 1] = box(f, Loc.text("Summary/Profiles", "Profiles used, and why"),
            profileReasons(summary.corrected))
    end
    if #summary.failed > 0 then
        rows[#rows + 1] = box(f, Loc.text("Summary/Failed", "Failed"), listText(summary.failed, "failure"))
    end
    if #summary.notDone > 0 then
        rows[#rows + 1] = box(f, Loc.text("Summary/NotDoneTitle", "Not done"), listText(summary.notDone,
            "notDoneReason"))
    end
    if #summary.skipped > 0 then
        rows[#rows + 1] = box(f, Loc.text("Summary/Skipped", "Skipped"), listText(summary.skipped, "skipReason"))
    end
    local noted = {}
    for _, entry in ipairs(summary.corrected) do
        local parts = {}
        if entry.note then
            parts[#parts + 1] = entry.note
        end
        if entry.stack == false then
            parts[#parts + 1] = Loc.text("Summary/Elsewhere", "written to ^1 because its own folder is read-only; " ..
                "not stacked with the original, since Lightroom stacks photos only within one folder.",
                LrPathUtils.parent(entry.result.output))
        end
        if #parts > 0 then
            noted[#noted + 1] = { fileName = entry.fileName, text = table.concat(parts, " ") }
        end
    end
    if #noted > 0 then
        rows[#rows + 1] = box(f, Loc.text("Summary/Notes", "Notes"), listText(noted, "text"))
    end
    local series = BatchScan.summaryText(summary.batch, summary.corrected)
    if series then
        rows[#rows + 1] = box(f, Loc.text("Summary/Series", "Frames of the same series"), series)
    end
    for _, proposal in ipairs(CorrectSummary.proposals(summary.corrected)) do
        local key = "added_" .. proposal.name
        props[key] = ""
        rows[#rows + 1] = f:row {
            f:push_button { title = Loc.text("Summary/AddSites", "Add ^1 to profile “^2”",
                Ui.count(#proposal.sites, "newly found hot pixel"), proposal.name),
                enabled = bind { key = key, transform = function(v) return v == "" end },
                action = function()
                    LrTasks.startAsyncTask(function() props[key] = CorrectSummary.addSites(proposal) end,
                        "HotPixels addSites")
                end },
            f:static_text { title = bind(key), width_in_chars = 40 },
        }
    end
    local pictures = picturePages(f, props, summary.corrected)
    if pictures then
        rows[#rows + 1] = pictures
    end
    return f:column(rows)
end

function CorrectSummary.show(context, summary)
    local f = LrView.osFactory()
    local props = LrBinding.makePropertyTable(context)
    LrDialogs.presentModalDialog { title = Loc.text("Summary/Title", "Hot pixels corrected"),
        contents = CorrectSummary.view(f, props, summary), cancelVerb = "< exclude >",
        actionVerb = Loc.text("Summary/OK", "OK") }
end

return CorrectSummary
