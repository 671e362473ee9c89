--[[----------------------------------------------------------------------------
Test world: the SDK stand-in plus the real worker, simulated DNGs and temp
folders, shared by the specs.

The real worker is $HOTPIXELS_PYTHON_BIN/hotpixels-worker (./run.sh test sets
it). Specs that need it are declared with `world.itWithWorker`: pending when
it is not installed, failing under HOTPIXELS_CI=1.
------------------------------------------------------------------------------]]

local sdk = require "sdk"
local lfs = require "lfs"

local world = {}
world.sdk = sdk

local root = os.getenv("HOTPIXELS_ROOT") or lfs.currentdir()
world.root = root
world.pythonBin = os.getenv("HOTPIXELS_PYTHON_BIN") or (root .. "/.venv/bin")
world.ci = os.getenv("HOTPIXELS_CI") == "1"

local shq = sdk.shellQuote

local function fileExists(path)
    return lfs.attributes(path, "mode") == "file"
end

local function run(command)
    local ok = os.execute(command)
    return ok == 0 or ok == true
end

local workerState
--- The real worker's path, or nil and why not (checked once: it must answer --version).
function world.realWorker()
    if workerState == nil then
        local exe = world.pythonBin .. "/hotpixels-worker"
        if not fileExists(exe) then
            workerState = { nil, "the real worker is not installed (" .. exe .. ")" }
        elseif not run("timeout 120 " .. shq(exe) .. " --version >/dev/null 2>&1") then
            workerState = { nil, "the real worker does not run (" .. exe .. " --version failed)" }
        else
            workerState = { exe }
        end
    end
    return workerState[1], workerState[2]
end

--- Returns a declarer for specs that need the real worker: pending without it, failing under
-- HOTPIXELS_CI=1. Pass busted's `it` and `pending` (they live in the spec's environment).
function world.withWorker(it, pending)
    return function(name, fn)
        local exe, why = world.realWorker()
        if exe then
            return it(name, fn)
        end
        if world.ci then
            return it(name, function() error("HOTPIXELS_CI=1: " .. why) end)
        end
        return pending(name .. " (" .. why .. ")")
    end
end

--- A fresh SDK world with a temp profile library; the worker preference points at `workerPath`
-- (default: the real worker). Returns the temp root.
function world.fresh(opts)
    opts = opts or {}
    sdk.reset({ socketTimeoutS = opts.socketTimeoutS or 0.3, keepNewline = opts.keepNewline })
    local tmp = sdk.makeTempDir("world")
    local prefs = import("LrPrefs").prefsForPlugin()
    prefs.libraryFolder = tmp .. "/library"
    lfs.mkdir(prefs.libraryFolder)
    prefs.workerPath = opts.workerPath or world.realWorker()
    prefs.heartbeatS = opts.heartbeatS or 20
    sdk.unloadPlugin()
    world.tmp = tmp
    return tmp
end

--- Writes an executable shell wrapper at `path` that runs `command` with the caller's arguments.
function world.wrapper(path, command, before)
    local f = assert(io.open(path, "w"))
    f:write("#!/bin/sh\n", before or "", "\nexec ", command, ' "$@"\n')
    f:close()
    assert(run("chmod +x " .. shq(path)))
    return path
end

--- A wrapper that runs the fake worker (support/fake_worker.lua) in `mode`. With `record` (a file
-- path), the worker appends every request it reads to that file (see world.recorded).
function world.fakeWorker(mode, record)
    local dir = sdk.makeTempDir("fake")
    return world.wrapper(dir .. "/hotpixels-worker",
        "lua5.1 " .. shq(root .. "/tests/lua/support/fake_worker.lua") .. " " .. mode ..
        (record and (" --record " .. shq(record)) or ""))
end

--- The requests a fake worker recorded in `record`, decoded, in arrival order; with `method`, only
-- that method's.
function world.recorded(record, method)
    local cjson = require "cjson"
    local out = {}
    local f = io.open(record, "r")
    if not f then
        return out
    end
    for line in f:lines() do
        local msg = cjson.decode(line)
        if not method or msg.method == method then
            out[#out + 1] = msg
        end
    end
    f:close()
    return out
end

--- Writes fake DNGs (the series modes of support/fake_worker.lua read them) into a new folder:
-- `count` frames of body `opts.serial` (default "FAKE001"), each hot at the sites `opts.defects`
-- (default: 3 sites, "row:column"), plus the sites in `opts.extra[i]` for frame i (a star, noise);
-- `opts.lit[i]` marks frame i as a lit frame (not a dark frame).
-- Returns the paths, sorted.
function world.fakeFrames(count, opts)
    opts = opts or {}
    local dir = sdk.makeTempDir("frames")
    local paths = {}
    for i = 1, count do
        local sites = {}
        for _, site in ipairs(opts.defects or { "10:12", "33:7", "50:41" }) do
            sites[#sites + 1] = site
        end
        for _, site in ipairs((opts.extra or {})[i] or {}) do
            sites[#sites + 1] = site
        end
        paths[i] = string.format("%s/%s_%04d.dng", dir, opts.prefix or "frame", i)
        local f = assert(io.open(paths[i], "wb"))
        f:write(string.format("FAKE-DNG serial=%s size=64x64 defects=%s%s\n", opts.serial or "FAKE001",
            table.concat(sites, ","), (opts.lit or {})[i] and " lit=1" or ""))
        f:close()
    end
    return paths
end

local simCache = {}
--- Simulated DNGs from the real simulator, made once per seed/options and copied for each use:
-- returns {darks = {...}, lights = {...}, dir = folder}.
function world.simulate(seed, extra)
    local key = seed .. (extra or "")
    if not simCache[key] then
        local dir = sdk.makeTempDir("sim" .. seed)
        local cmd = string.format(
            "timeout 300 %s simulate %s --preset small --darks 6 --lights 3 --seed %d %s >%s/sim.log 2>&1",
            shq(world.pythonBin .. "/hotpixels"), shq(dir), seed, extra or "", shq(dir))
        assert(run(cmd), "the simulator failed: see " .. dir .. "/sim.log")
        simCache[key] = dir
    end
    local src = simCache[key]
    local copy = sdk.makeTempDir("copy" .. seed)
    assert(run("cp -R " .. shq(src .. "/darks") .. " " .. shq(src .. "/lights") .. " " .. shq(copy)))
    local out = { dir = copy, darks = {}, lights = {}, key = key }
    for _, kind in ipairs({ "darks", "lights" }) do
        for name in lfs.dir(copy .. "/" .. kind) do
            if name:match("%.dng$") then
                table.insert(out[kind], copy .. "/" .. kind .. "/" .. name)
            end
        end
        table.sort(out[kind])
    end
    return out
end

local libraryCache = {}
--- Puts a profile named `name`, built from `sim`'s darks, into the current world's library. Built
-- by the real worker once per simulation and name, then copied (a profile is a self-contained file).
function world.profile(sim, name)
    local key = sim.key .. "|" .. name .. "|" .. #sim.darks
    local library = import("LrPrefs").prefsForPlugin().libraryFolder
    if not libraryCache[key] then
        local cacheDir = sdk.makeTempDir("lib")
        local result, err = world.call("profiles.create", { paths = sim.darks, name = name, library = cacheDir })
        assert(result, err and err.message)
        libraryCache[key] = cacheDir
    end
    assert(run("cp -R " .. shq(libraryCache[key]) .. "/. " .. shq(library) .. "/"))
end

--- The files in `dir` (names only, sorted).
function world.listDir(dir)
    local names = {}
    for name in lfs.dir(dir) do
        if name ~= "." and name ~= ".." then
            names[#names + 1] = name
        end
    end
    table.sort(names)
    return names
end

--- Runs `fn` in a task with the stand-in, returning its results (raises its error).
function world.task(fn, timeoutS)
    return sdk.runTask(fn, timeoutS)
end

--- Runs a menu command's module (`Module.run(context)`) in a task, as its menu item does; returns
-- what run returns.
function world.runCommand(module, timeoutS)
    local result = sdk.runTask(function()
        return import("LrFunctionContext").callWithContext("test command", function(context)
            return module.run(context)
        end)
    end, timeoutS or 150)
    for _, call in ipairs(sdk.dialogs()) do
        if call.kind == "message" and tostring(call.info):find("Something unexpected went wrong", 1, true) then
            error("the command failed: " .. call.info, 2)
        end
    end
    return result
end

--- Calls the worker through the plug-in's client, in a task; returns result, err.
function world.call(method, params, timeoutS)
    local WorkerClient = require "WorkerClient"
    return sdk.runTask(function() return WorkerClient.call(method, params) end, timeoutS or 120)
end

--- The bytes of a file.
function world.read(path)
    local f = assert(io.open(path, "rb"))
    local data = f:read("*a")
    f:close()
    return data
end

--- Answers dialogs from a table keyed by kind ("modal", "confirm", "message", "openPanel", ...) or
-- by a dialog's title; each value is an answer or a function(call) returning one. Every call is
-- also recorded in sdk.dialogs().
function world.answers(map)
    sdk.answerDialogs(function(call)
        local answer = map[call.title or ""] or map[call.message or ""] or map[call.kind]
        if type(answer) == "function" then
            return answer(call)
        end
        if answer == nil and (call.kind == "modal" or call.kind == "confirm") then
            return "ok"
        end
        return answer
    end)
end

--- The dialogs of `kind` shown so far.
function world.shown(kind)
    local out = {}
    for _, call in ipairs(sdk.dialogs()) do
        if call.kind == kind then
            out[#out + 1] = call
        end
    end
    return out
end

--- Stops the shared worker client (if one was loaded) so no process outlives a spec.
function world.stopWorker()
    local loaded = package.loaded.WorkerClient
    if loaded and loaded.sharedIsRunning() then
        pcall(sdk.runTask, function() loaded.shared():stop(5) end, 20)
    end
    if loaded then
        loaded.resetShared()
    end
end

--- Whether process `pid` is alive.
function world.alive(pid)
    return run("kill -0 " .. tonumber(pid) .. " 2>/dev/null")
end

--- Adds the files to the stand-in catalog and selects them; returns the photos.
function world.selectFiles(paths)
    local photos = {}
    for i, path in ipairs(paths) do
        photos[i] = sdk.catalog:addExistingPhoto(path, {})
    end
    sdk.catalog:select(photos)
    return photos
end

--- The progress scope whose caption is `caption` (a photo's own bar in a group), or nil.
function world.scopeCaptioned(caption)
    for _, scope in ipairs(sdk.scopes()) do
        if scope.caption == caption then
            return scope
        end
    end
    return nil
end

--- Answers "Correct Hot Pixels…" with `settings` (props to set) plus `extra` answers by title or
-- kind; returns a table that records the dialog (`seen.dialog`) and the summary (`seen.summary`).
function world.answerCorrectDialog(settings, extra)
    local seen = {}
    local map = {
        ["Correct Hot Pixels"] = function(call)
            seen.dialog = call
            for k, v in pairs(settings or {}) do
                call.props[k] = v
            end
            return "ok"
        end,
        ["Hot pixels corrected"] = function(call)
            seen.summary = call
            return "ok"
        end,
    }
    for k, v in pairs(extra or {}) do
        map[k] = v
    end
    world.answers(map)
    return seen
end

return world
