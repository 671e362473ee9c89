--[[----------------------------------------------------------------------------
A worker the tests control. Usage, as the client launches it through a wrapper
script:
  lua5.1 fake_worker.lua MODE [--record FILE] --connect SEND_PORT RECV_PORT --token T [--log F] ...

Misbehaving modes, for the client's failure paths (the good paths run against
the real worker): wrong-token | protocol-2 | silent | exit-3 | die-after-hello

Series modes, for the batch-evidence stories: the worker speaks the protocol
(docs/protocol.md) for image.inspect, profiles.match, image.scanBatch and
image.correct on *fake DNGs*, text files whose first line is
  FAKE-DNG serial=S size=64x64 defects=Y:X,Y:X,...
(the body's serial, the raw size, and the sites, row:column, that are hot in
this frame). Like the real worker it rejects unknown parameters (-32602 naming
the first), checks input paths (1001), writes `<stem><suffix>.dng` (numbered,
never overwriting) and answers `$/cancelRequest` with -32800.
  series        image.scanBatch groups frames by body and layout; in a group of
                3 or more frames the sites hot in every frame are the evidence.
                image.correct with that batch_id repairs them (counts.batch);
                the other hot sites of a frame count as residual.
  no-scan       a worker from before image.scanBatch: -32601 for the method and
                -32602 for a batch_id parameter.
  scan-fails    image.scanBatch fails with out_of_memory (4002).
  scan-expires  the worker forgets a scan after the first image.correct that
                uses it.
  scan-gone     the worker forgets every scan at once: the image.correct naming
                it gets 1014 batch_expired (scan-gone-old: -32602 on batch_id,
                as workers from before 1014 answered).
A multi-photo image.correct does not scan by itself. As the contract of issue 16
says, it sends `$/result {id, index, total, result}` for each image as soon as its
file is final, answers `$/cancelRequest {id}` with -32800 whose data.results are the
finished images (the one in flight leaves no file), and `$/cancelRequest {id, path}`
by turning that image's result into a "cancelled" error while the others go on. An
unknown batch_id is 1014 batch_expired (in no-scan mode: -32602, as old workers).
Each image takes CORRECT_STEP_S seconds.
The profile library holds one profile, "FakeCam night", for the body with serial
PROFILED (profiles.match explains why); other bodies match nothing. A profile's
recurring sites that it does not list are proposed additions (every recurring site:
the profile lists none); profiles.addSites records them.

--record FILE appends every request line the worker reads to FILE.
------------------------------------------------------------------------------]]

local socket = require "socket"
local cjson = require "cjson"

local mode = arg[1]
local sendPort, recvPort, token, recordPath
for i = 2, #arg do
    if arg[i] == "--connect" then
        sendPort, recvPort = tonumber(arg[i + 1]), tonumber(arg[i + 2])
    elseif arg[i] == "--token" then
        token = arg[i + 1]
    elseif arg[i] == "--record" then
        recordPath = arg[i + 1]
    end
end

if mode == "exit-3" then
    os.exit(3)
end

local CORRECT_STEP_S = tonumber(os.getenv("HOTPIXELS_FAKE_STEP_S") or "0.05") -- seconds per image
local PROFILED = { serial = "PROFILED", name = "FakeCam night",
    why = "same body (serial PROFILED), ISO 1600 = 1600, exposure 30 s = 30 s" }
local SCAN_STEP_S = 0.1 -- seconds the scan spends on each frame, so that a cancel can arrive mid-scan

local requests = assert(socket.connect("127.0.0.1", sendPort)) -- we read requests here
local replies = assert(socket.connect("127.0.0.1", recvPort)) -- we write replies here

local function write(message)
    replies:send(cjson.encode(message) .. "\n")
end

local function record(line)
    if recordPath then
        local f = assert(io.open(recordPath, "a"))
        f:write(line, "\n")
        f:close()
    end
end

local pid = tonumber((io.open("/proc/self/stat") or { read = function() return "0" end }):read("*l"):match("^%d+"))
write({ jsonrpc = "2.0", method = "$/token",
    params = { token = mode == "wrong-token" and "not-the-token" or token, pid = pid, protocol = 1 } })

-- Errors -------------------------------------------------------------------------------

local RpcError = {}

local function rpcError(code, name, message, extra)
    local data = { name = name, code = code }
    for k, v in pairs(extra or {}) do
        data[k] = v
    end
    return setmetatable({ code = code, message = message, data = data }, RpcError)
end

local function badParam(param, message)
    return rpcError(-32602, "invalid_option", message, { param = param, code = 5001 })
end

-- Parameters: unknown ones are refused, as the real worker does.
local function checkParams(params, allowed)
    local known = {}
    for _, name in ipairs(allowed) do
        known[name] = true
    end
    local names = {}
    for name in pairs(params) do
        names[#names + 1] = name
    end
    table.sort(names)
    for _, name in ipairs(names) do
        if not known[name] then
            error(badParam(name, "unknown parameter '" .. name .. "'"), 0)
        end
    end
end

-- Fake DNGs ---------------------------------------------------------------------------

local function leaf(path)
    return path:match("([^/]+)$")
end

-- A fake DNG's header {serial, size, defects = {"y:x", ...}}; raises 1001/1003 like the real reader.
local function readFrame(path, param)
    local f = io.open(path, "rb")
    if not f then
        error(rpcError(1001, "file_not_found", "file not found: " .. path, { path = path, param = param }), 0)
    end
    local line = f:read("*l") or ""
    f:close()
    if not line:match("^FAKE%-DNG ") then
        error(rpcError(1003, "not_tiff", "not a TIFF/DNG file: " .. path, { path = path }), 0)
    end
    local frame = { path = path, serial = line:match("serial=(%S+)") or "?", size = line:match("size=(%S+)") or "?",
        defects = {}, corrected = line:match("corrected=1") ~= nil, lit = line:match("lit=1") ~= nil }
    for site in (line:match("defects=(%S+)") or ""):gmatch("[^,]+") do
        frame.defects[#frame.defects + 1] = site
    end
    return frame
end

-- The sites hot in every one of `frames`.
local function recurring(frames)
    local seen = {}
    for _, frame in ipairs(frames) do
        for _, site in ipairs(frame.defects) do
            seen[site] = (seen[site] or 0) + 1
        end
    end
    local sites = {}
    for site, n in pairs(seen) do
        if n == #frames then
            sites[site] = true
        end
    end
    return sites
end

local function countKeys(t)
    local n = 0
    for _ in pairs(t) do
        n = n + 1
    end
    return n
end

-- Reading while busy --------------------------------------------------------------------

local inbox = {} -- request lines read during a job, handled after it

local function readLine()
    if #inbox > 0 then
        return table.remove(inbox, 1)
    end
    local line = requests:receive("*l")
    if line then
        record(line)
    end
    return line
end

local cancelledPaths = {} -- request id -> {path = true}: images cancelled one by one

-- Reads what the client sent meanwhile (without waiting); true when it cancelled request `id`.
local function cancelArrived(id)
    while #socket.select({ requests }, nil, 0) > 0 do
        local line = requests:receive("*l")
        if not line then
            os.exit(0)
        end
        record(line)
        local msg = cjson.decode(line)
        if msg.method == "$/cancelRequest" and type(msg.params) == "table" and msg.params.id == id then
            if msg.params.path == nil then
                return true
            end
            cancelledPaths[id] = cancelledPaths[id] or {}
            cancelledPaths[id][msg.params.path] = true
        else
            inbox[#inbox + 1] = line
        end
    end
    return false
end

local function cancelled(results)
    return rpcError(-32800, "cancelled", "cancelled by the user; no partial files were left behind",
        results and { results = results } or nil)
end

-- Methods -----------------------------------------------------------------------------

local batches, nextBatch = {}, 1
local learned = {} -- learned profiles (profiles.learn): name -> {serial, photos, sites}
local methods = {}

function methods.image_inspect(params)
    checkParams(params, { "path" })
    local frame = readFrame(params.path, "path")
    local h, w = frame.size:match("^(%d+)x(%d+)$")
    return { path = params.path, raw_size = { tonumber(h), tonumber(w) },
        metadata = { make = "HotPixels", model = "FakeCam", serial = frame.serial, iso = 1600, exposure_s = 30,
            corrected_by_hotpixels = frame.corrected } }
end

function methods.profiles_match(params)
    checkParams(params, { "path", "library" })
    local frame = readFrame(params.path, "path")
    for name, l in pairs(learned) do
        if l.serial == frame.serial then
            local why = string.format("learned from %d photos of this body (serial %s); ISO 1600 within " ..
                "1600–3200", l.photos, l.serial)
            return { best = name, candidates = { { name = name, score = 1, explanation = why } } }
        end
    end
    if frame.serial == PROFILED.serial then
        return { best = PROFILED.name,
            candidates = { { name = PROFILED.name, score = 1, explanation = PROFILED.why } } }
    end
    return { best = cjson.null, candidates = {}, reason = "the library holds no profile for this body" }
end

-- profiles.create on fake DNGs: a frame marked lit=1 is refused with 2011 not_a_dark_frame; the
-- profile lists the sites hot in every frame.
local created = {}
function methods.profiles_create(params)
    checkParams(params, { "paths", "name", "threshold", "allow_mismatch", "library" })
    local frames = {}
    for i, path in ipairs(params.paths or {}) do
        frames[i] = readFrame(path, "paths")
        if frames[i].lit then
            error(rpcError(2011, "not_a_dark_frame", "not a dark frame: " .. leaf(path), { path = path,
                reason = "its median is 31 % of white: light reached the sensor (lens cap off?)" }), 0)
        end
    end
    local hot = countKeys(recurring(frames))
    local h, w = frames[1].size:match("^(%d+)x(%d+)$")
    local summary = { name = params.name, kind = "dark", n_frames = #frames, hot_count = hot,
        stats = { n_hot = hot }, raw_size = { 1, tonumber(h), tonumber(w) }, iso = 1600, exposure_s = 30,
        camera = { make = "HotPixels", model = "FakeCam", serial = frames[1].serial } }
    created[params.name] = true
    return { profile = summary, mismatches = {}, pictures = {} }
end

function methods.profiles_delete(params)
    checkParams(params, { "name", "library" })
    if not created[params.name] then
        error(rpcError(2001, "profile_not_found", "no profile named '" .. tostring(params.name) .. "'"), 0)
    end
    created[params.name] = nil
    return { deleted = params.name }
end

-- profiles.learn on fake DNGs (issue 15): the sites hot in every photo of the body become a learned
-- profile, which profiles.list lists and profiles.match then offers for that body.
function methods.profiles_learn(params, id)
    checkParams(params, { "paths", "name", "update", "tracked", "library" })
    local paths = params.paths or {}
    if not params.update and #paths < 8 then
        error(badParam("paths", "learning a new profile needs 8 or more photos"), 0)
    end
    local frames, skipped = {}, {}
    for i, path in ipairs(paths) do
        write({ jsonrpc = "2.0", method = "$/progress", params = { id = id, done = i - 1, total = #paths,
            message = "reading " .. leaf(path) } })
        socket.sleep(CORRECT_STEP_S)
        if cancelArrived(id) then
            error(cancelled(), 0)
        end
        local ok, frame = pcall(readFrame, path, "paths")
        if ok and not frame.corrected then
            frames[#frames + 1] = frame
        else
            skipped[#skipped + 1] = { path = path, error = ok and { code = 1013, name = "already_corrected",
                message = "written by HotPixels" } or { code = frame.code, name = frame.data.name,
                message = frame.message } }
        end
    end
    local previous = learned[params.name]
    if params.update and not previous then
        error(rpcError(2001, "profile_not_found", "no learned profile named '" .. tostring(params.name) .. "'"), 0)
    end
    local sites = countKeys(recurring(frames))
    local photos = #frames + (previous and previous.photos or 0)
    learned[params.name] = { serial = frames[1] and frames[1].serial or "?", photos = photos, sites = sites }
    local summary = { name = params.name, kind = "learned", hot_count = sites, stats = { n_hot = sites },
        camera = { make = "HotPixels", model = "FakeCam", serial = learned[params.name].serial },
        learned = { photos = photos, first_capture = "2026-08-12T22:10:00", last_capture = "2026-08-13T01:40:00",
            iso = { 1600, 3200 }, exposure_s = { 20, 30 }, temperature_c = cjson.null } }
    return { profile = summary, sites = sites, rts = 0, photos_used = #frames, skipped = skipped, seconds = 0.4 }
end

function methods.profiles_list(params)
    checkParams(params, { "library" })
    local profiles = { { name = PROFILED.name, kind = "dark", camera = { serial = PROFILED.serial }, iso = 1600,
        exposure_s = 30 } }
    for name, l in pairs(learned) do
        profiles[#profiles + 1] = { name = name, kind = "learned", camera = { serial = l.serial },
            learned = { photos = l.photos, iso = { 1600, 3200 } } }
    end
    return { profiles = profiles, errors = {} }
end

local addedSites = {}
function methods.profiles_addSites(params)
    checkParams(params, { "name", "sites", "paths", "library" })
    if params.name ~= PROFILED.name then
        error(rpcError(2001, "profile_not_found", "no profile named '" .. tostring(params.name) .. "'"), 0)
    end
    local added = 0
    for _, site in ipairs(params.sites or {}) do
        local key = site.y .. ":" .. site.x
        if not addedSites[key] then
            addedSites[key] = true
            added = added + 1
        end
    end
    return { profile = { name = PROFILED.name, kind = "dark" }, added = added }
end

function methods.image_scanBatch(params, id)
    checkParams(params, { "paths", "tracked", "library" })
    if type(params.paths) ~= "table" or #params.paths < 2 then
        error(badParam("paths", "image.scanBatch needs 'paths', a list of 2 or more DNGs"), 0)
    end
    if params.tracked ~= nil and type(params.tracked) ~= "boolean" then
        error(badParam("tracked", "'tracked' must be true or false"), 0)
    end
    if mode == "scan-fails" then
        error(rpcError(4002, "out_of_memory", "the frames do not fit in memory"), 0)
    end
    local started = socket.gettime()
    local groups, order, skipped = {}, {}, {}
    for i, path in ipairs(params.paths) do
        write({ jsonrpc = "2.0", method = "$/progress", params = { id = id, done = i - 1, total = #params.paths,
            message = "reading " .. leaf(path) } })
        socket.sleep(SCAN_STEP_S)
        if cancelArrived(id) then
            error(cancelled(), 0)
        end
        local ok, frame = pcall(readFrame, path, "paths")
        if ok then
            local key = frame.serial .. "|" .. frame.size
            if not groups[key] then
                groups[key] = { frames = {} }
                order[#order + 1] = key
            end
            table.insert(groups[key].frames, frame)
        else
            skipped[#skipped + 1] = { path = path, error = { code = frame.code, name = frame.data.name,
                message = frame.message } }
        end
    end
    local batch = { byPath = {} }
    local out = {}
    for _, key in ipairs(order) do
        local frames = groups[key].frames
        local sites = #frames >= 3 and recurring(frames) or {}
        local paths = {}
        for i, frame in ipairs(frames) do
            paths[i] = frame.path
            batch.byPath[frame.path] = { sites = sites, frames = #frames }
        end
        out[#out + 1] = { paths = paths, frames = #frames, sites = countKeys(sites),
            proposed_profile_additions = countKeys(sites) }
    end
    local batchId = string.format("batch-%d-%d", pid or 0, nextBatch)
    nextBatch = nextBatch + 1
    if mode ~= "scan-gone" and mode ~= "scan-gone-old" then
        batches[batchId] = batch -- scan-gone: forgotten at once (the worker restarted, or held too many)
    end
    return { batch_id = batchId, groups = out, skipped = skipped, seconds = socket.gettime() - started }
end

local function outputPath(source, outputDir, suffix)
    local dir = outputDir or source:match("^(.*)/[^/]+$")
    local stem = leaf(source):gsub("%.[^.]*$", "")
    local path = dir .. "/" .. stem .. suffix .. ".dng"
    local n = 1
    local existing = io.open(path, "rb")
    while existing do
        existing:close()
        n = n + 1
        path = string.format("%s/%s%s_%d.dng", dir, stem, suffix, n)
        existing = io.open(path, "rb")
    end
    return path
end

local function correctOne(path, params, batch)
    local frame = readFrame(path, "paths")
    if frame.corrected and not params.force then
        error(rpcError(1013, "already_corrected", "this image was written by HotPixels", { path = path }), 0)
    end
    local evidence = batch and batch.byPath[path]
    local useStage3 = false
    for _, stage in ipairs(params.stages or { "residual" }) do
        useStage3 = useStage3 or stage == "residual"
    end
    local fromBatch, residual = 0, 0
    for _, site in ipairs(frame.defects) do
        if evidence and useStage3 and evidence.sites[site] then
            fromBatch = fromBatch + 1
        elseif useStage3 then
            residual = residual + 1
        end
    end
    local output = outputPath(path, params.output_dir, params.suffix or "_hotpixels")
    -- written under a temporary name and renamed when complete, as the real worker's atomic writes
    local f = assert(io.open(output .. ".partial", "wb"))
    f:write(string.format("FAKE-DNG serial=%s size=%s defects= corrected=1\n", frame.serial, frame.size))
    f:close()
    assert(os.rename(output .. ".partial", output))
    local previews = cjson.null
    if params.report_dir then -- side files (previews) go to the report folder, as the real worker's
        local stem = leaf(output):gsub("%.dng$", "")
        previews = { regions = {} }
        for k = 1, math.min(2, #frame.defects) do
            local y, x = frame.defects[k]:match("^(%d+):(%d+)$")
            local region = { site = { tonumber(y), tonumber(x) }, change_dn = 1000 * k }
            for _, label in ipairs({ "before", "after" }) do
                region[label] = string.format("%s/%s.preview%d_%s.png", params.report_dir, stem, k, label)
                local png = assert(io.open(region[label], "wb"))
                png:write("\137PNG fake\n")
                png:close()
            end
            previews.regions[k] = region
        end
        previews.before, previews.after = (previews.regions[1] or {}).before, (previews.regions[1] or {}).after
    end
    local profile = { name = cjson.null, why = "no profile requested (--profile none)" }
    if params.profile == PROFILED.name or learned[params.profile] then
        profile = { name = params.profile, how = "named", why = "chosen by the user" }
    end
    local proposals = {}
    if evidence and profile.name ~= cjson.null then
        for site in pairs(evidence.sites) do
            local y, x = site:match("^(%d+):(%d+)$")
            proposals[#proposals + 1] = { y = tonumber(y), x = tonumber(x), excess_dn = 80,
                frames_hit = evidence.frames }
        end
        table.sort(proposals, function(a, b) return a.y * 100000 + a.x < b.y * 100000 + b.x end)
    end
    return { path = path, ok = true, output = output, report_path = cjson.null, profile = profile, previews = previews,
        counts = { dark = 0, hot = 0, residual = residual, batch = fromBatch },
        batch = evidence and { batch_id = params.batch_id, frames = evidence.frames, sites = fromBatch,
            proposed_profile_additions = proposals } or cjson.null }
end

function methods.image_correct(params, id)
    local allowed = { "paths", "path", "profile", "stages", "sensitivity", "output_dir", "suffix", "force", "library",
        "report_dir" }
    if mode ~= "no-scan" then
        allowed[#allowed + 1] = "batch_id"
        allowed[#allowed + 1] = "batch"
    end
    checkParams(params, allowed)
    if params.batch ~= nil and params.batch ~= "auto" and params.batch ~= "off" then
        error(badParam("batch", "'batch' must be \"auto\" or \"off\""), 0)
    end
    if params.batch == "off" and params.batch_id ~= nil then
        error(badParam("batch", "'batch': \"off\" and a 'batch_id' contradict each other; give one of them"), 0)
    end
    local batch
    if params.batch_id ~= nil then
        batch = batches[params.batch_id]
        if not batch then
            if mode == "no-scan" or mode == "scan-gone-old" then
                error(badParam("batch_id", "no batch scan '" .. tostring(params.batch_id) .. "' (unknown or " ..
                    "expired): scan the frames again"), 0)
            end
            error(rpcError(1014, "batch_expired", "no batch scan '" .. tostring(params.batch_id) .. "' (unknown or " ..
                "expired): scan the frames again", { param = "batch_id" }), 0)
        end
        if mode == "scan-expires" then
            batches[params.batch_id] = nil
        end
    end
    local paths = params.paths or { params.path }
    local results = {}
    for i, path in ipairs(paths) do
        write({ jsonrpc = "2.0", method = "$/progress", params = { id = id, done = 1000 * (i - 1),
            total = 1000 * #paths, message = "correcting " .. leaf(path) } })
        socket.sleep(CORRECT_STEP_S)
        if cancelArrived(id) then
            error(cancelled(results), 0) -- the image in flight leaves nothing: its file was never renamed
        end
        local result
        if (cancelledPaths[id] or {})[path] then
            result = { path = path, ok = false, error = { code = -32800, name = "cancelled",
                message = "you cancelled this image" } }
        else
            local ok
            ok, result = pcall(correctOne, path, params, batch)
            if not ok then
                local e = getmetatable(result) == RpcError and result or rpcError(1000, "internal", tostring(result))
                result = { path = path, ok = false, error = { code = e.code, name = e.data.name, message = e.message,
                    path = path } }
            end
        end
        results[i] = result
        write({ jsonrpc = "2.0", method = "$/result", params = { id = id, index = i - 1, total = #paths,
            result = result } })
    end
    return { results = results }
end

-- The loop ---------------------------------------------------------------------------

local series = { series = true, ["no-scan"] = true, ["scan-fails"] = true, ["scan-expires"] = true,
    ["scan-gone"] = true, ["scan-gone-old"] = true }

local function answer(msg)
    local name = msg.method:gsub("%.", "_")
    local fn = series[mode] and methods[name]
    if mode == "no-scan" and msg.method == "image.scanBatch" then
        fn = nil
    end
    if not fn then
        return nil, rpcError(-32601, "method_not_found", "unknown method: " .. msg.method, { detail = msg.method })
    end
    local ok, result = pcall(fn, type(msg.params) == "table" and msg.params or {}, msg.id)
    if ok then
        return result
    end
    if getmetatable(result) == RpcError then
        return nil, result
    end
    return nil, rpcError(1000, "internal", "internal error: " .. tostring(result))
end

while true do
    local line = readLine()
    if not line then
        os.exit(0)
    end
    local msg = cjson.decode(line)
    if msg.method == "worker.hello" and mode ~= "silent" then
        write({ jsonrpc = "2.0", id = msg.id, result = { protocol = mode == "protocol-2" and 2 or 1,
            worker_version = "fake", device = "cpu", model = { name = "fake" }, pid = pid } })
        if mode == "die-after-hello" then
            os.exit(5)
        end
    elseif msg.method == "worker.shutdown" then
        write({ jsonrpc = "2.0", id = msg.id, result = { ok = true } })
        os.exit(0)
    elseif msg.method == "$/cancelRequest" then
        if msg.id ~= nil then -- a cancel for a request no longer running: nothing to stop
            write({ jsonrpc = "2.0", id = msg.id, result = { cancelled = false } })
        end
    elseif series[mode] and msg.id ~= nil then
        local result, err = answer(msg)
        if err then
            write({ jsonrpc = "2.0", id = msg.id, error = { code = err.code, message = err.message, data = err.data } })
        else
            write({ jsonrpc = "2.0", id = msg.id, result = result })
        end
    end
end
