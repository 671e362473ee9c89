--[[----------------------------------------------------------------------------
ProfileCreateDialog.lua: "Create Profile from Dark Frames…".

The selected photos are the dark frames (non-DNG raws are exported as DNG
first). The name is pre-filled from the first frame's camera, ISO, exposure and
temperature (`image.inspect`); the threshold (σ) sets which pixels count as hot.
`profiles.create` runs with a progress bar and cancel. The summary shows the
profile, its pictures and any mismatch warnings; with mismatches the user keeps
the profile (continue) or deletes it (cancel). A worker that refuses mixed frames
is asked again with allow_mismatch after the user agrees.
------------------------------------------------------------------------------]]

local LrApplication = import "LrApplication"
local LrBinding = import "LrBinding"
local LrDialogs = import "LrDialogs"
local LrFileUtils = import "LrFileUtils"
local LrProgressScope = import "LrProgressScope"
local LrView = import "LrView"

local Exporter = require "Exporter"
local Loc = require "Loc"
local Log = require "Log"
local Ui = require "Ui"
local WorkerClient = require "WorkerClient"

local bind = LrView.bind

local ProfileCreateDialog = {}

ProfileCreateDialog.DEFAULT_THRESHOLD = 5
ProfileCreateDialog.NOT_A_DARK_FRAME = 2011 -- data {path, reason}; allow_mismatch does not override it
-- A dark frame set with more hot pixels than this share of the sensor (or none at all) is suspect:
-- a lit frame, a wrong threshold, or a sensor that is not hot at these settings.
ProfileCreateDialog.PLAUSIBLE_HOT_FRACTION = 0.005

--- Why the profile's hot-pixel count looks wrong (nil when it is plausible).
function ProfileCreateDialog.implausible(profile)
    local stats = Ui.value(profile.stats) or {}
    local hot = tonumber(Ui.value(profile.hot_count) or Ui.value(stats.n_hot))
    if not hot then
        return nil
    end
    if hot == 0 then
        return Loc.text("Create/NoHot", "It lists no hot pixels at all: these frames may be too short, or the " ..
            "threshold too high.")
    end
    local size = Ui.value(profile.raw_size) or {}
    local h, w = tonumber(size[#size - 1]), tonumber(size[#size])
    if h and w and h * w > 0 and hot / (h * w) > ProfileCreateDialog.PLAUSIBLE_HOT_FRACTION then
        return Loc.text("Create/TooManyHot", "It lists ^1 hot pixels, ^2 % of the sensor: real hot pixels are far " ..
            "fewer. Were these frames taken with the lens cap on?", hot, string.format("%.1f", 100 * hot / (h * w)))
    end
    return nil
end

--- "SimCam Mk1 ISO1600 30s 21C" from `image.inspect` metadata (unknown parts left out).
function ProfileCreateDialog.defaultName(meta)
    meta = meta or {}
    local parts = {}
    local model = Ui.value(meta.model)
    parts[#parts + 1] = model or "Camera"
    local iso = Ui.value(meta.iso)
    if type(iso) == "number" then
        parts[#parts + 1] = string.format("ISO%d", iso)
    end
    local exposure = Ui.value(meta.exposure_s)
    if type(exposure) == "number" then
        parts[#parts + 1] = exposure >= 1 and string.format("%gs", exposure) or string.format("1-%ds", 1 / exposure)
    end
    local temp = Ui.value(meta.temperature_c)
    if type(temp) == "number" then
        parts[#parts + 1] = string.format("%dC", math.floor(temp + 0.5))
    end
    return table.concat(parts, " ")
end

--- The dialog's view tree (bound to props: name, threshold).
function ProfileCreateDialog.buildView(f, props, frameCount)
    return f:column {
        bind_to_object = props,
        spacing = f:dialog_spacing(),
        f:static_text { title = string.format(Loc.text("Create/1", "Build a profile from %s of one camera body."),
            Ui.count(frameCount, Loc.text("Create/2", "dark frame"))) },
        f:row {
            f:static_text { title = Loc.text("Create/3", "Name:"), width = LrView.share("label") },
            f:edit_field { value = bind("name"), width_in_chars = 36 },
        },
        f:row {
            f:static_text { title = Loc.text("Create/4", "Hot pixel threshold (σ):"), width = LrView.share("label") },
            f:slider { value = bind("threshold"), min = 3, max = 12, integral = false, width = 200 },
            f:static_text { title = bind { key = "threshold", transform = function(v)
                return string.format("%.1f σ", tonumber(v) or 0)
            end }, width_in_chars = 6 },
        },
        f:static_text { title = Loc.text("Create/5", "Take dark frames with the lens cap on, at the ISO, exposure " ..
            "and temperature of your night shots."), width_in_chars = 60, height_in_lines = 2 },
    }
end

local function mismatchLines(mismatches)
    local lines = {}
    for _, m in ipairs(mismatches or {}) do
        lines[#lines + 1] = Ui.value(m.message) or string.format("%s: %s is %s, expected %s",
            tostring(Ui.value(m.path) or "?"),
            tostring(Ui.value(m.field)), tostring(Ui.value(m.value)), tostring(Ui.value(m.expected)))
    end
    return lines
end

--- The summary's view tree for a `profiles.create` result.
function ProfileCreateDialog.summaryView(f, result, suspect)
    local profile = Ui.value(result.profile) or {}
    local camera = Ui.value(profile.camera) or profile
    local stats = Ui.value(profile.stats) or {}
    local hot = Ui.value(profile.hot_count) or Ui.value(stats.n_hot)
    local rows = {
        f:static_text { title = string.format(Loc.text("Create/6", "Profile “%s”: %s %s (serial %s), %s, %s, %s, " ..
            "%s, %s hot pixels."),
            tostring(profile.name), tostring(Ui.value(camera.make) or ""), tostring(Ui.value(camera.model) or ""),
            tostring(Ui.value(camera.serial) or "unknown"), Ui.iso(profile.iso), Ui.exposure(profile.exposure_s),
            Ui.temperature(profile.temperature_c), Ui.count(Ui.value(profile.n_frames) or 0, "frame"),
            tostring(hot or "?")), width_in_chars = 80, height_in_lines = 2 },
    }
    local pictures = Ui.value(result.pictures) or Ui.value(profile.pictures) or {}
    local grid = Ui.chartGrid(f, pictures)
    if grid then
        rows[#rows + 1] = grid
    end
    if suspect then
        rows[#rows + 1] = f:group_box { title = Loc.text("Create/Suspect", "This profile looks wrong"),
            f:static_text { title = suspect, width_in_chars = 80, height_in_lines = 2 } }
    end
    local lines = mismatchLines(Ui.value(result.mismatches))
    if #lines > 0 then
        rows[#rows + 1] = f:group_box { title = Loc.text("Create/7", "Mismatched frames (used anyway)"),
            f:static_text { title = table.concat(lines, "\n"), width_in_chars = 80 } }
    end
    return f:column(rows)
end

local function create(context, paths, props, allowMismatch)
    local scope = LrProgressScope { title = Loc.text("Create/8", "Building the hot pixel profile"),
        functionContext = context }
    local result, err = WorkerClient.call("profiles.create", {
        paths = paths, name = props.name, threshold = props.threshold, allow_mismatch = allowMismatch,
    }, { scope = scope })
    scope:done()
    return result, err
end

--- The whole command, in the calling task. Returns the created profile's summary (nil if none).
function ProfileCreateDialog.run(context)
    return Ui.guard(context, Loc.text("Create/9", "Create Profile from Dark Frames"), function()
        local photos = LrApplication.activeCatalog():getTargetPhotos()
        if #photos == 0 then
            LrDialogs.message(Loc.text("Create/10", "No dark frames selected"), Loc.text("Create/11",
                "Select the dark frames (lens cap " ..
                "on, same ISO and exposure as your night shots) first."), "info")
            return nil
        end
        local paths, temps, problems = Exporter.dngPaths(photos)
        local function cleanup()
            for _, folder in ipairs(temps) do
                LrFileUtils.delete(folder)
            end
        end
        context:addCleanupHandler(cleanup)
        if #paths < 2 then
            LrDialogs.message(Loc.text("Create/12", "Not enough dark frames"), Loc.text("Create/13",
                "A profile needs at least two " ..
                "readable dark frames.\n") ..
                table.concat(problems, "\n"), "warning")
            return nil
        end
        local info, err = WorkerClient.call("image.inspect", { path = paths[1] })
        if not info and err.name and err.name:match("^worker_") then
            Ui.showWorkerError(Loc.text("Create/14", "The HotPixels worker is not available"), err)
            return nil
        end
        local props = LrBinding.makePropertyTable(context)
        props.name = ProfileCreateDialog.defaultName(info and Ui.value(info.metadata))
        props.threshold = ProfileCreateDialog.DEFAULT_THRESHOLD
        local f = LrView.osFactory()
        local answer = LrDialogs.presentModalDialog { title = Loc.text("Create/15", "Create Profile from Dark " ..
            "Frames"),
            contents = ProfileCreateDialog.buildView(f, props, #paths), actionVerb = Loc.text("Create/16",
                "Create Profile") }
        if answer ~= "ok" then
            return nil
        end
        local result
        result, err = create(context, paths, props, false)
        while not result and err and err.code == ProfileCreateDialog.NOT_A_DARK_FRAME do
            -- the worker refuses a frame that is not a dark frame: name it, say why, offer to leave it out
            local data = type(err.data) == "table" and err.data or {}
            local bad = Ui.value(data.path) or "?"
            local leaf = bad:match("([^/\\]+)$") or bad
            local remaining = {}
            for _, path in ipairs(paths) do
                if path ~= bad then
                    remaining[#remaining + 1] = path
                end
            end
            local canGoOn = #remaining >= 2 and #remaining < #paths
            local leaveOut = LrDialogs.confirm(Loc.text("Create/NotDark", "“^1” is not a dark frame", leaf),
                Loc.text("Create/NotDarkWhy", "^1\n\nA profile is built only from dark frames: the same camera, " ..
                    "ISO and exposure, lens cap on.", tostring(Ui.value(data.reason) or err.message)) ..
                (canGoOn and "" or ("\n" .. Loc.text("Create/TooFew", "Without it fewer than two frames remain."))),
                canGoOn and Loc.text("Create/LeaveOut", "Leave It Out and Continue") or
                Loc.text("Create/OK", "OK"), canGoOn and Loc.text("Create/Cancel", "Cancel") or "< exclude >")
            if not canGoOn or leaveOut ~= "ok" then
                return nil
            end
            paths = remaining
            result, err = create(context, paths, props, false)
        end
        if not result and err and not err.cancelled and type(err.data) == "table"
            and Ui.value(err.data.mismatches) then
            local lines = mismatchLines(Ui.value(err.data.mismatches))
            local again = LrDialogs.confirm(Loc.text("Create/17", "These dark frames do not all match"),
                table.concat(lines, "\n") ..
                Loc.text("Create/18", "\nBuild the profile anyway?"), Loc.text("Create/19", "Continue"),
                    Loc.text("Create/20", "Cancel"))
            if again ~= "ok" then
                return nil
            end
            result, err = create(context, paths, props, true)
        end
        if not result then
            if not err.cancelled then
                Ui.showWorkerError(Loc.text("Create/21", "The profile could not be built"), err)
            end
            return nil
        end
        local mismatches = Ui.value(result.mismatches) or {}
        local profile = Ui.value(result.profile) or {}
        local suspect = ProfileCreateDialog.implausible(profile)
        local keep, delete = Loc.text("Create/Keep", "Keep Profile"), Loc.text("Create/Delete", "Delete Profile")
        local summaryAnswer = LrDialogs.presentModalDialog { title = Loc.text("Create/Done", "Profile created"),
            contents = ProfileCreateDialog.summaryView(f, result, suspect),
            -- the default (action) button: Delete when the count is implausible, Keep otherwise
            actionVerb = suspect and delete or (#mismatches > 0 and keep or Loc.text("Create/OK", "OK")),
            otherVerb = suspect and keep or nil,
            cancelVerb = suspect and "< exclude >" or (#mismatches > 0 and delete or "< exclude >") }
        local deleteIt = (suspect and summaryAnswer == "ok") or (not suspect and #mismatches > 0
            and summaryAnswer ~= "ok")
        if deleteIt then
            local _, delErr = WorkerClient.call("profiles.delete", { name = profile.name })
            if delErr then
                Ui.showWorkerError(Loc.text("Create/22", "The profile could not be deleted"), delErr)
            end
            Log.info("profile", profile.name, "deleted after the mismatch warning")
            return nil
        end
        Log.info("profile created:", profile.name)
        return profile
    end)
end


return ProfileCreateDialog
