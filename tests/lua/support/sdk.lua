--[[----------------------------------------------------------------------------
A stand-in for the Lightroom Classic SDK calls the plug-in uses, written from the
SDK documentation gathered in docs/lightroom-sdk.md (section numbers below).

Real parts wherever they can run outside Lightroom:
  * LrTasks: tasks are coroutines run by a scheduler (`sdk.pump`); `execute`
    launches a real shell command in the background and polls for its exit
    status, so a task waiting on a process never blocks the other tasks.
  * LrSocket: real loopback TCP sockets (luasocket), newline framing, the
    receive socket's periodic "timeout" error while nobody is connected.
  * LrPathUtils / LrFileUtils: the real file system (lfs).
Recorders with scripted answers: LrView/LrBinding (the dialog tree),
LrDialogs, LrProgressScope, LrLogger, LrPrefs.
Rule checks: catalog and photo objects refuse metadata keys that lightroom-sdk.md
§4 does not list, nested `withWriteAccessDo`, a yield inside a write gate,
catalog writes outside a gate, `addPhoto` of a missing file or into another
folder's stack; sleeping outside a task; a yield inside a socket callback.
------------------------------------------------------------------------------]]

local socket = require "socket"
local lfs = require "lfs"

local sdk = {}

-- Shell quoting for the POSIX shell the stand-in runs commands in.
local function shq(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
sdk.shellQuote = shq

local function now()
    return socket.gettime()
end

-- State ------------------------------------------------------------------------

local state

--- Starts a fresh SDK world: no tasks, sockets, dialogs, prefs or catalog.
-- opts.pluginPath (default hotpixel.lrdevplugin), opts.root (a temp folder for
-- the standard paths), opts.socketTimeoutS (receive-socket idle "timeout"
-- period, 10 s in Lightroom; shorter in tests).
function sdk.reset(opts)
    opts = opts or {}
    if state then
        sdk.shutdown()
    end
    local root = opts.root or sdk.makeTempDir("sdk")
    state = {
        root = root,
        tasks = {},
        sockets = {},
        taskErrors = {},
        callbackErrors = {},
        dialogs = {},
        dialogHandler = nil,
        scopes = {},
        progressHooks = {},
        prefs = {},
        logs = {},
        readOnly = {},
        exports = {},
        gateDepth = 0,
        currentTask = nil,
        noYield = nil,
        execCount = 0,
        socketTimeoutS = opts.socketTimeoutS or 10,
        keepNewline = opts.keepNewline, -- whether onMessage strips the newline is unverified: test both
        pluginPath = opts.pluginPath or (os.getenv("HOTPIXELS_ROOT") or lfs.currentdir()) .. "/hotpixel.lrdevplugin",
    }
    sdk.state = state
    sdk.catalog = sdk.newCatalog()
    _G.WIN_ENV = false
    _G.MAC_ENV = true
    _G.LOC = sdk.LOC
    _G._PLUGIN = {
        id = "app.hotpixels.lightroom",
        path = state.pluginPath,
        enabled = true,
        resourceId = function(_, name) return state.pluginPath .. "/" .. name end,
    }
    _G.import = sdk.import
    return sdk
end

--- Closes every socket and forgets every task (processes started by tests are theirs to stop).
function sdk.shutdown()
    if not state then
        return
    end
    for _, s in ipairs(state.sockets) do
        s:_close()
    end
    state.tasks = {}
end

-- Temp folders made by this test process, removed when it exits (a userdata's __gc runs at exit).
local madeDirs = {}
local seededTemp = false
sdk.keepTemp = os.getenv("HOTPIXELS_KEEP_TEMP") == "1"
local reaper = newproxy(true)
getmetatable(reaper).__gc = function()
    if not sdk.keepTemp then
        for _, dir in ipairs(madeDirs) do
            os.execute("rm -rf " .. shq(dir))
        end
    end
end
sdk._reaper = reaper

function sdk.makeTempDir(prefix)
    if not seededTemp then
        -- busted processes start with the same random sequence: mix in time and an address
        local addr = tonumber(tostring({}):match("0x(%x+)") or "0", 16) or 0
        math.randomseed((os.time() * 1000 + math.floor(socket.gettime() * 1000) % 1000 + addr) % 2147483647)
        seededTemp = true
    end
    local base = os.getenv("TMPDIR") or "/tmp"
    for _ = 1, 100 do
        local name = string.format("%s/hp-lua-%s-%d-%06d", base, prefix, os.time(), math.random(0, 999999))
        if lfs.mkdir(name) then
            madeDirs[#madeDirs + 1] = name
            return name
        end
    end
    error("sdk.makeTempDir: cannot create a temp folder in " .. base)
end

function sdk.LOC(text)
    return (tostring(text):gsub("^%$%$%$/[^=]*=", ""))
end

-- Scheduler (LrTasks) ------------------------------------------------------------

local function inTask()
    return state.currentTask ~= nil and state.noYield == nil
end

local function checkCanYield(what)
    if state.noYield then
        error(what .. ": cannot yield inside " .. state.noYield, 2)
    end
    if not state.currentTask then
        error(what .. ": must be called from a task (LrTasks.startAsyncTask)", 2)
    end
    if state.gateDepth > 0 then
        error(what .. ": yield inside catalog:withWriteAccessDo (never yield inside a write gate)", 2)
    end
end

local function suspend(waitFn)
    return coroutine.yield({ wait = waitFn })
end

local function startTask(fn, name)
    local task = { name = name or "task", co = coroutine.create(fn), wait = nil }
    state.tasks[#state.tasks + 1] = task
    return task
end

local function resumeTask(task)
    state.currentTask = task
    local ok, request = coroutine.resume(task.co)
    state.currentTask = nil
    if not ok then
        state.taskErrors[#state.taskErrors + 1] = task.name .. ": " .. tostring(request)
        task.dead = true
    elseif coroutine.status(task.co) == "dead" then
        task.dead = true
    else
        task.wait = request and request.wait
    end
end

local pollSockets

--- Runs the world until `cond()` is true; raises after `timeoutS` seconds (default 60).
function sdk.pump(cond, timeoutS, what)
    local deadline = now() + (timeoutS or 60)
    while true do
        if cond and cond() then
            return true
        end
        pollSockets()
        local ran = false
        local tasks = state.tasks
        state.tasks = {}
        for _, task in ipairs(tasks) do
            if not task.dead and (not task.wait or task.wait()) then
                task.wait = nil
                resumeTask(task)
                ran = true
            end
            if not task.dead then
                state.tasks[#state.tasks + 1] = task
            end
        end
        for _, t in ipairs(tasks) do
            if t.dead then
                t.co = nil
            end
        end
        if not cond and #state.tasks == 0 then
            return true
        end
        if now() > deadline then
            error(string.format("sdk.pump: timed out after %s s waiting for %s", tostring(timeoutS or 60),
                what or "a condition"), 2)
        end
        if not ran then
            socket.sleep(0.005)
        end
    end
end

--- Runs `fn` as a task and pumps until it finishes; returns its results or raises its error.
function sdk.runTask(fn, timeoutS)
    local done, results, err = false, nil, nil
    startTask(function()
        local r = { sdk.tasks.pcall(fn) }
        if r[1] then
            results = { unpack(r, 2) }
        else
            err = r[2]
        end
        done = true
    end, "test")
    sdk.pump(function() return done end, timeoutS or 120, "the test task")
    if err then
        error(err, 0)
    end
    return unpack(results)
end

local LrTasks = {}
sdk.tasks = LrTasks

function LrTasks.startAsyncTask(fn, name)
    startTask(fn, name)
end

function LrTasks.sleep(seconds)
    checkCanYield("LrTasks.sleep")
    local wake = now() + (seconds or 0)
    suspend(function() return now() >= wake end)
end

function LrTasks.yield()
    checkCanYield("LrTasks.yield")
    suspend(function() return true end)
end

function LrTasks.canYield()
    return inTask() and state.gateDepth == 0
end

-- pcall that lets the called function yield (Lua 5.1's pcall cannot cross a yield).
function LrTasks.pcall(fn, ...)
    local co = coroutine.create(fn)
    local results = { coroutine.resume(co, ...) }
    while true do
        if not results[1] then
            return false, results[2]
        end
        if coroutine.status(co) == "dead" then
            return true, unpack(results, 2)
        end
        local back = { coroutine.yield(unpack(results, 2)) }
        results = { coroutine.resume(co, unpack(back)) }
    end
end

--- Runs `command` in a shell, blocking only the calling task; returns the exit status.
function LrTasks.execute(command)
    checkCanYield("LrTasks.execute")
    state.execCount = state.execCount + 1
    local statusFile = string.format("%s/exec-%d.status", state.root, state.execCount)
    local outFile = string.format("%s/exec-%d.out", state.root, state.execCount)
    local script = string.format("{ ( %s ) </dev/null >%s 2>&1; echo $? >%s.tmp; mv %s.tmp %s; } 2>/dev/null &",
        command, shq(outFile), shq(statusFile), shq(statusFile), shq(statusFile))
    state.lastCommand = command
    os.execute(script)
    suspend(function() return lfs.attributes(statusFile, "mode") == "file" end)
    local f = assert(io.open(statusFile))
    local status = tonumber(f:read("*l"))
    f:close()
    return status
end

-- LrFunctionContext --------------------------------------------------------------

local Context = {}
Context.__index = Context

function Context:addCleanupHandler(fn)
    self.cleanup[#self.cleanup + 1] = fn
end

function Context:addFailureHandler(fn)
    self.failure[#self.failure + 1] = fn
end

local function runWithContext(fn, ...)
    local ctx = setmetatable({ cleanup = {}, failure = {} }, Context)
    local results = { LrTasks.pcall(fn, ctx, ...) }
    if not results[1] then
        for _, h in ipairs(ctx.failure) do
            h(false, results[2])
        end
    end
    for i = #ctx.cleanup, 1, -1 do
        ctx.cleanup[i](unpack(results))
    end
    return unpack(results)
end

local LrFunctionContext = {}

function LrFunctionContext.callWithContext(_, fn, ...)
    local results = { runWithContext(fn, ...) }
    if not results[1] then
        error(results[2], 0)
    end
    return unpack(results, 2)
end

function LrFunctionContext.pcallWithContext(_, fn, ...)
    return runWithContext(fn, ...)
end

function LrFunctionContext.postAsyncTaskWithContext(name, fn)
    startTask(function() LrFunctionContext.callWithContext(name, fn) end, name)
end

-- LrSocket (§2) ------------------------------------------------------------------

local SocketController = {}
SocketController.__index = SocketController

local function callback(sock, name, ...)
    local fn = sock.params[name]
    if not fn then
        return
    end
    state.noYield = "LrSocket " .. name
    local ok, err = pcall(fn, sock, ...)
    state.noYield = nil
    if not ok then
        state.callbackErrors[#state.callbackErrors + 1] = name .. ": " .. tostring(err)
    end
end

function SocketController:send(message)
    if self.params.mode ~= "send" then
        error("LrSocket: send() on a receive-mode socket", 2)
    end
    if self.closed then
        error("LrSocket: send() on a closed socket", 2)
    end
    if not self.client then
        self.dropped = (self.dropped or 0) + 1 -- nobody connected: the message goes nowhere
        return
    end
    self.client:settimeout(5)
    local ok, err = self.client:send(message)
    self.client:settimeout(0)
    if not ok then
        self.sendError = err
    end
end

--- Receive sockets: after a "timeout" the socket stops accepting its client until reconnect() (the
-- SDK says to call reconnect() after a timeout; lightroom-sdk.md §2). It announces its port again through
-- onConnecting (the same port here; a plug-in must not assume so). Send sockets: M2L saw reconnect()
-- hang Lightroom, so the stand-in refuses it there (close and bind again instead).
function SocketController:reconnect()
    if self.params.mode ~= "receive" then
        error("LrSocket: reconnect() on a send socket hangs Lightroom (M2L); close and bind again", 2)
    end
    if self.closed then
        error("LrSocket: reconnect() on a closed socket", 2)
    end
    self.reconnects = (self.reconnects or 0) + 1
    self.stalled = false
    self.lastTimeout = now()
    self.announced = false
end

function SocketController:_close()
    if self.client then
        self.client:close()
        self.client = nil
    end
    if self.server then
        self.server:close()
        self.server = nil
    end
    self.closed = true
end

function SocketController:close()
    self:_close()
end

local LrSocket = {}

function LrSocket.bind(params)
    assert(params.mode == "send" or params.mode == "receive", "LrSocket.bind: mode must be 'send' or 'receive'")
    assert(params.port, "LrSocket.bind: port is required (0 lets the system choose)")
    local server = assert(socket.bind("127.0.0.1", params.port))
    server:settimeout(0)
    local _, port = server:getsockname()
    local sock = setmetatable({
        params = params, server = server, port = tonumber(port), buffer = "", announced = false,
        lastTimeout = now(),
    }, SocketController)
    state.sockets[#state.sockets + 1] = sock
    if params.functionContext then
        params.functionContext:addCleanupHandler(function() sock:_close() end)
    end
    return sock
end

local function pollOne(sock)
    if sock.closed then
        return
    end
    if not sock.announced then
        sock.announced = true
        callback(sock, "onConnecting", sock.port)
        return
    end
    if not sock.client then
        if sock.stalled then
            return -- timed out: it accepts nobody until reconnect()
        end
        local client = sock.server:accept()
        if client then
            client:settimeout(0)
            sock.client = client
            callback(sock, "onConnected", sock.port)
        elseif sock.params.mode == "receive" and now() - sock.lastTimeout >= state.socketTimeoutS then
            sock.lastTimeout = now()
            sock.stalled = true
            callback(sock, "onError", "timeout")
        end
        return
    end
    -- connected: read whole lines (a send socket only watches for its peer leaving)
    while sock.client do
        local line, err, partial = sock.client:receive("*l")
        if line then
            line = sock.buffer .. line .. (state.keepNewline and "\n" or "")
            sock.buffer = ""
            if sock.params.mode == "receive" then
                callback(sock, "onMessage", line)
            end
        else
            sock.buffer = sock.buffer .. (partial or "")
            if err == "closed" then
                sock.client:close()
                sock.client = nil
                sock.lastTimeout = now()
                callback(sock, "onClosed")
            end
            break
        end
    end
end

pollSockets = function()
    local live = {}
    for _, sock in ipairs(state.sockets) do
        pollOne(sock)
        if not sock.closed then
            live[#live + 1] = sock
        end
    end
    state.sockets = live
end

function sdk.openSockets()
    return #state.sockets
end

-- LrPathUtils / LrFileUtils (§3) --------------------------------------------------

local LrPathUtils = {}

function LrPathUtils.child(path, name)
    return (path:gsub("/+$", "")) .. "/" .. name
end

function LrPathUtils.parent(path)
    local p = path:gsub("/+$", "")
    return p:match("^(.*)/[^/]*$")
end

function LrPathUtils.leafName(path)
    return (path:gsub("/+$", "")):match("([^/]*)$")
end

function LrPathUtils.extension(path)
    local leaf = LrPathUtils.leafName(path)
    return leaf:match("%.([^.]*)$") or ""
end

function LrPathUtils.removeExtension(path)
    local ext = LrPathUtils.extension(path)
    if ext == "" then
        return path
    end
    return path:sub(1, #path - #ext - 1)
end

function LrPathUtils.addExtension(path, ext)
    return path .. "." .. ext
end

function LrPathUtils.replaceExtension(path, ext)
    return LrPathUtils.removeExtension(path) .. "." .. ext
end

function LrPathUtils.standardizePath(path)
    return (path:gsub("/+", "/"):gsub("/%./", "/"):gsub("(.)/$", "%1"))
end

function LrPathUtils.getStandardFilePath(name)
    local known = { home = true, temp = true, desktop = true, appPrefs = true, pictures = true, documents = true,
        appData = true }
    assert(known[name], "LrPathUtils.getStandardFilePath: unknown name " .. tostring(name))
    local dir = state.root .. "/std-" .. name
    lfs.mkdir(dir)
    return dir
end

local LrFileUtils = {}

function LrFileUtils.exists(path)
    local mode = lfs.attributes(path, "mode")
    if mode == "file" then
        return "file"
    elseif mode == "directory" then
        return "directory"
    end
    return false
end

local function markedReadOnly(path)
    for dir in pairs(state.readOnly) do
        if path == dir or path:sub(1, #dir + 1) == dir .. "/" then
            return true
        end
    end
    return false
end

--- The SDK documents isWritable for "a writable disk file": a folder answers false, read literally.
function LrFileUtils.isWritable(path)
    if lfs.attributes(path, "mode") ~= "file" or markedReadOnly(path) then
        return false
    end
    return os.execute("test -w " .. shq(path)) == 0
end

--- {fileSystemFreeSize, fileSystemSize} (bytes) of the volume holding `path`, from `df`; nil when the path
-- does not exist. (The plug-in itself never shells out for this.)
function LrFileUtils.volumeAttributes(path)
    if not lfs.attributes(path, "mode") then
        return nil
    end
    if state.freeBytes then
        return { fileSystemFreeSize = state.freeBytes, fileSystemSize = state.freeBytes * 4 }
    end
    local p = io.popen("df -Pk " .. shq(path) .. " 2>/dev/null")
    local text = p:read("*a")
    p:close()
    local size, available = (text:match("\n([^\n]+)") or ""):match("^.-%s+(%d+)%s+%d+%s+(%d+)%s+%d+%%")
    if not available then
        return nil
    end
    return { fileSystemFreeSize = tonumber(available) * 1024, fileSystemSize = tonumber(size) * 1024 }
end

--- Tests set the free space the volumes report (bytes; nil: the real figure).
function sdk.setFreeBytes(bytes)
    state.freeBytes = bytes
end

function LrFileUtils.isReadable(path)
    return os.execute("test -r " .. shq(path)) == 0
end

function LrFileUtils.createAllDirectories(path)
    local sofar = path:sub(1, 1) == "/" and "" or "."
    for part in path:gmatch("[^/]+") do
        sofar = sofar .. "/" .. part
        lfs.mkdir(sofar)
    end
    return lfs.attributes(path, "mode") == "directory"
end

function LrFileUtils.createDirectory(path)
    return lfs.mkdir(path) and true or false
end

function LrFileUtils.readFile(path)
    local f = io.open(path, "rb")
    if not f then
        return nil
    end
    local data = f:read("*a")
    f:close()
    return data
end

function LrFileUtils.copy(from, to)
    if LrFileUtils.exists(to) then
        return false, "destination exists"
    end
    if markedReadOnly(to) then
        return false, "permission denied"
    end
    local data = LrFileUtils.readFile(from)
    if not data then
        return false, "cannot read " .. from
    end
    local f = io.open(to, "wb")
    if not f then
        return false, "cannot write " .. to
    end
    f:write(data)
    f:close()
    return true
end

function LrFileUtils.move(from, to)
    if LrFileUtils.exists(to) then
        return false, "destination exists"
    end
    if markedReadOnly(to) or markedReadOnly(from) then
        return false, "permission denied"
    end
    local ok, err = os.rename(from, to)
    return ok and true or false, err
end

function LrFileUtils.delete(path)
    local mode = lfs.attributes(path, "mode")
    if not mode then
        return false, "no such file"
    end
    if mode == "directory" then
        return os.execute("rm -rf " .. shq(path)) == 0
    end
    local ok, err = os.remove(path)
    return ok and true or false, err
end

function LrFileUtils.moveToTrash(path)
    return LrFileUtils.delete(path)
end

function LrFileUtils.chooseUniqueFileName(path)
    if not LrFileUtils.exists(path) then
        return path
    end
    local base, ext = LrPathUtils.removeExtension(path), LrPathUtils.extension(path)
    for i = 2, 100000 do
        local candidate = base .. "-" .. i .. (ext ~= "" and "." .. ext or "")
        if not LrFileUtils.exists(candidate) then
            return candidate
        end
    end
end

function LrFileUtils.files(dir)
    local entries = {}
    for name in lfs.dir(dir) do
        if name ~= "." and name ~= ".." and lfs.attributes(dir .. "/" .. name, "mode") == "file" then
            entries[#entries + 1] = dir .. "/" .. name
        end
    end
    table.sort(entries)
    local i = 0
    return function()
        i = i + 1
        return entries[i]
    end
end

function LrFileUtils.recursiveFiles(dir)
    local entries = {}
    local function walk(d)
        for name in lfs.dir(d) do
            if name ~= "." and name ~= ".." then
                local p = d .. "/" .. name
                local mode = lfs.attributes(p, "mode")
                if mode == "directory" then
                    walk(p)
                elseif mode == "file" then
                    entries[#entries + 1] = p
                end
            end
        end
    end
    walk(dir)
    table.sort(entries)
    local i = 0
    return function()
        i = i + 1
        return entries[i]
    end
end

--- Tests mark a folder read-only here: the suite runs as root, where chmod does not stop writes.
function sdk.markReadOnly(dir)
    state.readOnly[dir] = true
end

-- LrBinding / LrView (§3) ---------------------------------------------------------

local PropertyTable = {}

function PropertyTable.new()
    local values, observers = {}, {}
    local t = {}
    local methods = {
        addObserver = function(_, key, fn)
            observers[key] = observers[key] or {}
            table.insert(observers[key], fn)
        end,
        removeObserver = function(_, key)
            observers[key] = nil
        end,
        _values = values,
    }
    return setmetatable(t, {
        __index = function(_, k)
            if methods[k] ~= nil then
                return methods[k]
            end
            return values[k]
        end,
        __newindex = function(_, k, v)
            local old = values[k]
            values[k] = v
            if old ~= v and observers[k] then
                for _, fn in ipairs(observers[k]) do
                    fn(t, k, v)
                end
            end
        end,
        __pairs = function() return pairs(values) end,
    }), values
end

local LrBinding = {}

function LrBinding.makePropertyTable(ctx)
    assert(ctx and ctx.cleanup, "LrBinding.makePropertyTable needs a function context")
    return (PropertyTable.new())
end

local viewKinds = {
    row = true, column = true, view = true, static_text = true, edit_field = true, checkbox = true,
    radio_button = true, popup_menu = true, slider = true, push_button = true, picture = true,
    scrolled_view = true, group_box = true, spacer = true, separator = true, catalog_photo = true,
}

local LrView = {}

local spacings = { control_spacing = 8, dialog_spacing = 16, label_spacing = 4 }

function LrView.osFactory()
    return setmetatable({}, {
        __index = function(_, kind)
            if spacings[kind] then
                return function() return spacings[kind] end
            end
            if not viewKinds[kind] then
                error("LrView: the stand-in knows no view kind '" .. tostring(kind) .. "'", 2)
            end
            return function(_, args)
                local node = { kind = kind }
                for k, v in pairs(args or {}) do
                    node[k] = v
                end
                return node
            end
        end,
    })
end

function LrView.share(name)
    return { isShare = true, name = name }
end

function LrView.bind(spec)
    if type(spec) == "string" then
        spec = { key = spec }
    end
    assert(type(spec.key) == "string", "LrView.bind: key must be a string")
    return { isBinding = true, key = spec.key, bind_to_object = spec.bind_to_object, transform = spec.transform }
end

sdk.view = {}

--- Every node of a view tree, depth first.
function sdk.view.nodes(tree)
    local out = {}
    local function walk(node)
        if type(node) ~= "table" or node.isBinding then
            return
        end
        if node.kind then
            out[#out + 1] = node
        end
        for _, child in ipairs(node) do
            walk(child)
        end
    end
    walk(tree)
    return out
end

--- The nodes of `kind` whose attribute `attr` is bound to `key`.
function sdk.view.bound(tree, kind, attr, key)
    local found = {}
    for _, node in ipairs(sdk.view.nodes(tree)) do
        local b = node[attr]
        if node.kind == kind and type(b) == "table" and b.isBinding and b.key == key then
            found[#found + 1] = node
        end
    end
    return found
end

--- The first node whose title (or a static text's title) contains `text`.
function sdk.view.withTitle(tree, text, kind)
    for _, node in ipairs(sdk.view.nodes(tree)) do
        if (not kind or node.kind == kind) and type(node.title) == "string" and node.title:find(text, 1, true) then
            return node
        end
    end
end

local CHAR_PX = 7 -- an average character of Lightroom's dialog font, for the size estimates below

--- The estimated width of a view tree in pixels (Lightroom lays views out itself; this follows the sizes
-- the plug-in asks for: `width`, `width_in_chars`, and for text without either, its length). Rows add
-- their children and spacing; columns, group boxes and scrolled views take the widest child (a scrolled
-- view its own width).
function sdk.view.widthPx(node)
    if type(node) ~= "table" or node.isBinding then
        return 0
    end
    if type(node.width) == "number" and node.kind ~= "row" and node.kind ~= "column" then
        return node.width + (node.kind == "group_box" and 16 or 0)
    end
    if node.width_in_chars then
        return node.width_in_chars * CHAR_PX
    end
    local function textPx(pad)
        local title = type(node.title) == "string" and node.title or ""
        local longest = 0
        for line in (title .. "\n"):gmatch("([^\n]*)\n") do
            longest = math.max(longest, #line:gsub("[\128-\191]", ""))
        end
        return longest * CHAR_PX + pad
    end
    if node.kind == "static_text" then
        return textPx(0)
    elseif node.kind == "push_button" or node.kind == "checkbox" then
        return textPx(24)
    end
    local children = {}
    for _, child in ipairs(node) do
        children[#children + 1] = sdk.view.widthPx(child)
    end
    if node.kind == "row" then
        local total = 0
        for _, w in ipairs(children) do
            total = total + w
        end
        return total + (tonumber(node.spacing) or 8) * math.max(#children - 1, 0)
    end
    local widest = 0
    for _, w in ipairs(children) do
        widest = math.max(widest, w)
    end
    return widest + (node.kind == "group_box" and 16 or 0)
end

--- Presses a push button: runs its action as Lightroom does, in a task.
function sdk.view.press(button)
    assert(button and button.kind == "push_button", "sdk.view.press: not a push button")
    button.action(button)
end

-- LrDialogs (§3) -------------------------------------------------------------------

local LrDialogs = {}

--- Sets the function that answers dialogs: handler(call) where call = {kind, ...}; its
-- return value is the dialog's answer. Without one, modal dialogs and confirms answer "ok".
function sdk.answerDialogs(handler)
    state.dialogHandler = handler
end

local function dialog(call)
    state.dialogs[#state.dialogs + 1] = call
    if state.dialogHandler then
        return state.dialogHandler(call)
    end
    if call.kind == "message" or call.kind == "showError" or call.kind == "bezel" then
        return nil
    end
    if call.kind == "openPanel" or call.kind == "savePanel" then
        return nil
    end
    return "ok"
end

function LrDialogs.message(message, info, style)
    dialog({ kind = "message", message = message, info = info, style = style })
end

function LrDialogs.confirm(message, info, actionVerb, cancelVerb, otherVerb)
    return dialog({ kind = "confirm", message = message, info = info, actionVerb = actionVerb,
        cancelVerb = cancelVerb, otherVerb = otherVerb })
end

-- A dialog call record: `kind` plus a copy of the arguments the plug-in passed.
local function callOf(kind, args)
    local call = { kind = kind }
    for k, v in pairs(args or {}) do
        call[k] = v
    end
    return call
end

function LrDialogs.presentModalDialog(args)
    assert(args.title and args.contents, "presentModalDialog needs title and contents")
    local call = callOf("modal", args)
    call.props = type(args.contents) == "table" and args.contents.bind_to_object or nil
    return dialog(call)
end

function LrDialogs.showError(message)
    dialog({ kind = "showError", message = tostring(message) })
end

function LrDialogs.showBezel(message, seconds)
    dialog({ kind = "bezel", message = message, seconds = seconds })
end

function LrDialogs.runOpenPanel(args)
    return dialog(callOf("openPanel", args))
end

function LrDialogs.runSavePanel(args)
    return dialog(callOf("savePanel", args))
end

--- Every dialog shown so far ({kind, title/message, ...}).
function sdk.dialogs()
    return state.dialogs
end

-- LrProgressScope (§3) ---------------------------------------------------------------

local Scope = {}
Scope.__index = Scope

function Scope:setPortionComplete(done, total)
    self.portions[#self.portions + 1] = { done, total }
    self:_hook("portion", done, total)
end

function Scope:setCaption(caption)
    self.captions[#self.captions + 1] = caption
    self.caption = caption
    self:_hook("caption", caption)
end

function Scope:isCanceled()
    return self.canceled
end

function Scope:cancel()
    self.canceled = true
end

function Scope:done()
    self.finished = true
    self:_hook("done")
end

function Scope:isDone()
    return self.finished
end

function Scope:setCancelable(flag)
    self.cancelable = flag
end

function Scope:setIndeterminate()
    self.indeterminate = true
end

function Scope:_hook(what, ...)
    for _, hook in ipairs(state.progressHooks) do
        hook(self, what, ...)
    end
end

local function newScope(args)
    local scope = setmetatable({ title = args.title, caption = args.caption, parent = args.parent,
        portions = {}, captions = {}, canceled = false, finished = false, cancelable = true }, Scope)
    state.scopes[#state.scopes + 1] = scope
    if args.functionContext then
        args.functionContext:addCleanupHandler(function() scope:done() end)
    end
    return scope
end

--- hook(scope, what, ...) runs on every progress update ("portion", "caption", "done").
function sdk.onProgress(hook)
    state.progressHooks[#state.progressHooks + 1] = hook
end

function sdk.scopes()
    return state.scopes
end

-- LrPrefs, LrLogger ---------------------------------------------------------------------

local LrPrefs = {}

function LrPrefs.prefsForPlugin()
    if not state.prefsTable then
        state.prefsTable = PropertyTable.new()
    end
    return state.prefsTable
end

local function newLogger(name)
    local logger = { name = name }
    local function record(level)
        return function(_, ...)
            local text = table.concat({ ... }, " ")
            state.logs[#state.logs + 1] = level .. " " .. text
            if os.getenv("HOTPIXELS_LUA_VERBOSE") then
                io.stderr:write(level, " ", text, "\n")
            end
        end
    end
    for _, level in ipairs({ "trace", "debug", "info", "warn", "error" }) do
        logger[level] = record(level)
        logger[level .. "f"] = function(self, fmt, ...)
            record(level)(self, string.format(fmt, ...))
        end
    end
    logger.enable = function(self, how) self.enabled = how end
    return logger
end

function sdk.logs()
    return state.logs
end

-- LrExportSession (§5) --------------------------------------------------------------------

local requiredExportSettings = {
    LR_format = "DNG", LR_DNG_conversionMethod = "preserveRAW", LR_DNG_embedRAW = false,
    LR_DNG_lossyCompression = false, LR_export_destinationType = "specificFolder",
}

local ExportSession = {}
ExportSession.__index = ExportSession

function ExportSession:doExportOnCurrentTask()
    checkCanYield("LrExportSession:doExportOnCurrentTask")
    self.exported = true
end

--- Renditions exist only once the export runs (every stand-alone export in the SDK samples calls
-- doExportOnCurrentTask first); a cancelled progress scope stops the loop when stopIfCanceled is set.
function ExportSession:renditions(args)
    checkCanYield("LrExportSession:renditions")
    if not self.exported then
        error("LrExportSession:renditions before doExportOnCurrentTask(): the export never started", 2)
    end
    args = args or {}
    local settings = self.exportSettings
    local i = 0
    return function()
        i = i + 1
        local photo = self.photosToExport[i]
        if not photo then
            return nil
        end
        if args.stopIfCanceled and args.progressScope and args.progressScope:isCanceled() then
            return nil
        end
        local folder = settings.LR_export_destinationPathPrefix
        local leaf = LrPathUtils.leafName(photo.path)
        local rendition = { photo = photo }
        function rendition.waitForRender()
            checkCanYield("LrExportRendition:waitForRender")
            local dest = LrPathUtils.replaceExtension(LrPathUtils.child(folder, leaf), "dng")
            if LrFileUtils.exists(dest) then
                if settings.LR_collisionHandling ~= "rename" then
                    error("LrExportSession: an existing file would raise a dialog mid-batch", 0)
                end
                dest = LrFileUtils.chooseUniqueFileName(dest)
            end
            local ok, err = LrFileUtils.copy(photo.path, dest)
            if not ok then
                return false, err
            end
            rendition.destinationPath = dest
            return true, dest
        end
        return i, rendition
    end
end

local function newExportSession(args)
    local settings = args.exportSettings
    for key, want in pairs(requiredExportSettings) do
        if settings[key] ~= want then
            error(string.format("LrExportSession: %s should be %s for a raw-preserving DNG, got %s", key,
                tostring(want), tostring(settings[key])), 2)
        end
    end
    assert(settings.LR_export_destinationPathPrefix, "LrExportSession: no destination folder")
    state.exports[#state.exports + 1] = settings
    return setmetatable({ photosToExport = args.photosToExport, exportSettings = settings }, ExportSession)
end

function sdk.exports()
    return state.exports
end

-- Catalog and photos (§4) -----------------------------------------------------------------

local rawKeys = {
    path = true, uuid = true, fileFormat = true, isVirtualCopy = true, masterPhoto = true, isoSpeedRating = true,
    shutterSpeed = true, dateTimeOriginal = true, stackInFolderIsCollapsed = true, stackPositionInFolder = true,
    keywords = true, rating = true, pickStatus = true,
    -- the settable keys (§4 setRawMetadata) read back the same way
    label = true, colorNameForLabel = true,
    -- catalog-only IPTC/location metadata (LrPhoto getRawMetadata/setRawMetadata)
    title = true, caption = true, copyright = true, creator = true, headline = true, gps = true, gpsAltitude = true,
    location = true, city = true, stateProvince = true, country = true,
}
local formattedKeys = {
    cameraMake = true, cameraModel = true, cameraSerialNumber = true, fileName = true, isoSpeedRating = true,
}
local settableKeys = { rating = true, label = true, colorNameForLabel = true, pickStatus = true,
    title = true, caption = true, copyright = true, creator = true, headline = true, gps = true, gpsAltitude = true,
    location = true, city = true, stateProvince = true, country = true }

local Photo = {}
Photo.__index = Photo

local function requireGate(what)
    if state.gateDepth == 0 then
        error(what .. " must run inside catalog:withWriteAccessDo", 3)
    end
end

function Photo:getRawMetadata(key)
    if not rawKeys[key] then
        error("LrPhoto:getRawMetadata: no such key '" .. tostring(key) .. "'", 2)
    end
    if key == "path" then
        return self.path
    elseif key == "keywords" then
        local copy = {}
        for i, kw in ipairs(self.keywords) do
            copy[i] = kw
        end
        return copy
    elseif key == "masterPhoto" then
        return self.master or self
    end
    return self.raw[key]
end

function Photo:getFormattedMetadata(key)
    if not formattedKeys[key] then
        error("LrPhoto:getFormattedMetadata: no such key '" .. tostring(key) .. "'", 2)
    end
    if key == "fileName" then
        return LrPathUtils.leafName(self.path)
    end
    return self.formatted[key]
end

function Photo:setRawMetadata(key, value)
    requireGate("LrPhoto:setRawMetadata")
    if not settableKeys[key] then
        error("LrPhoto:setRawMetadata: key '" .. tostring(key) .. "' cannot be set", 2)
    end
    self.raw[key] = value
end

function Photo:addKeyword(keyword)
    requireGate("LrPhoto:addKeyword")
    assert(type(keyword) == "table" and keyword.getName, "LrPhoto:addKeyword needs an LrKeyword")
    for _, kw in ipairs(self.keywords) do
        if kw == keyword then
            return
        end
    end
    self.keywords[#self.keywords + 1] = keyword
end

function Photo:checkPhotoAvailability()
    return self.online ~= false and LrFileUtils.exists(self.path) == "file"
end

function Photo:getDevelopSettings()
    local copy = {}
    for k, v in pairs(self.develop) do
        copy[k] = v
    end
    return copy
end

function Photo:applyDevelopSettings(settings)
    requireGate("LrPhoto:applyDevelopSettings")
    for k, v in pairs(settings) do
        self.develop[k] = v
    end
end

--- The (ordinary) collections that hold this photo.
function Photo:getContainedCollections()
    local out = {}
    for _, c in ipairs(self.catalog.collections) do
        for _, p in ipairs(c.photos) do
            if p == self then
                out[#out + 1] = c
                break
            end
        end
    end
    return out
end

local Collection = {}
Collection.__index = Collection

function Collection:getName()
    return self.name
end

function Collection:getPhotos()
    local copy = {}
    for i, p in ipairs(self.photos) do
        copy[i] = p
    end
    return copy
end

function Collection.isSmartCollection()
    return false
end

function Collection:addPhotos(photos)
    requireGate("LrCollection:addPhotos")
    for _, photo in ipairs(photos) do
        local present = false
        for _, p in ipairs(self.photos) do
            present = present or p == photo
        end
        if not present then
            self.photos[#self.photos + 1] = photo
        end
    end
end

local Keyword = {}
Keyword.__index = Keyword

function Keyword:getName()
    return self.name
end

local Catalog = {}
Catalog.__index = Catalog

function sdk.newCatalog()
    return setmetatable({ photos = {}, targets = {}, keywords = {}, collections = {}, undoSteps = {}, nextId = 1 },
        Catalog)
end

local function newPhoto(catalog, path, fields)
    fields = fields or {}
    local id = catalog.nextId
    catalog.nextId = id + 1
    local ext = LrPathUtils.extension(path):lower()
    local photo = setmetatable({
        id = id, path = path, online = fields.online, master = fields.master, catalog = catalog,
        keywords = {}, develop = fields.develop or {},
        raw = {
            uuid = string.format("UUID-%04d", id), fileFormat = fields.fileFormat or (ext == "dng" and "DNG" or "RAW"),
            isVirtualCopy = fields.master ~= nil, isoSpeedRating = fields.iso, shutterSpeed = fields.exposure,
            dateTimeOriginal = fields.dateTimeOriginal, rating = fields.rating, pickStatus = fields.pickStatus or 0,
            colorNameForLabel = fields.colorNameForLabel or "none", label = fields.label,
            title = fields.title, caption = fields.caption, copyright = fields.copyright, gps = fields.gps,
            gpsAltitude = fields.gpsAltitude, creator = fields.creator,
            stackInFolderIsCollapsed = false, stackPositionInFolder = nil,
        },
        formatted = {
            cameraMake = fields.make, cameraModel = fields.model, cameraSerialNumber = fields.serial,
            isoSpeedRating = fields.iso and ("ISO " .. fields.iso) or nil,
        },
    }, Photo)
    for _, name in ipairs(fields.keywords or {}) do
        photo.keywords[#photo.keywords + 1] = catalog:_keyword(name)
    end
    catalog.photos[#catalog.photos + 1] = photo
    return photo
end

function Catalog:_keyword(name)
    if not self.keywords[name] then
        self.keywords[name] = setmetatable({ name = name }, Keyword)
    end
    return self.keywords[name]
end

--- Test helper: a photo already in the catalog (fields: make, model, serial, iso, exposure,
-- rating, colorNameForLabel, keywords, develop, master (makes a virtual copy), online).
function Catalog:addExistingPhoto(path, fields)
    return newPhoto(self, path, fields)
end

--- Test helper: the photos selected in the grid.
function Catalog:select(photos)
    self.targets = photos
end

--- Test helper: an ordinary collection named `name` holding `photos`.
function Catalog:addExistingCollection(name, photos)
    local c = setmetatable({ name = name, photos = {} }, Collection)
    for i, p in ipairs(photos or {}) do
        c.photos[i] = p
    end
    self.collections[#self.collections + 1] = c
    return c
end

--- Selects `active` and `others` in the grid (no write access needed; LrCatalog).
function Catalog:setSelectedPhotos(active, others)
    if state.gateDepth > 0 then
        error("catalog:setSelectedPhotos inside a write gate", 2)
    end
    assert(getmetatable(active) == Photo, "catalog:setSelectedPhotos: activePhoto must be an LrPhoto")
    local targets = { active }
    for _, p in ipairs(others or {}) do
        assert(getmetatable(p) == Photo, "catalog:setSelectedPhotos: otherSelectedPhotos must be LrPhotos")
        if p ~= active then
            targets[#targets + 1] = p
        end
    end
    self.targets = targets
    self.selectionSetBy = (self.selectionSetBy or 0) + 1
end

function Catalog:getTargetPhotos()
    return self.targets
end

function Catalog:getTargetPhoto()
    return self.targets[1]
end

function Catalog:getAllPhotos()
    return self.photos
end

function Catalog:withWriteAccessDo(actionName, fn, opts)
    assert(type(actionName) == "string", "withWriteAccessDo needs an action name")
    if state.gateDepth > 0 then
        error("catalog:withWriteAccessDo: nested call (never nest write gates)", 2)
    end
    if not state.currentTask then
        error("catalog:withWriteAccessDo must be called from a task", 2)
    end
    state.gateDepth = 1
    local ok, err = pcall(fn, self)
    state.gateDepth = 0
    if not ok then
        error(err, 0)
    end
    self.writes = (self.writes or 0) + 1
    self.undoSteps[#self.undoSteps + 1] = actionName -- Edit > "Undo <actionName>"
    if opts and opts.callback then
        opts.callback()
    end
    return "executed"
end

local importable = { dng = true, jpg = true, jpeg = true, tif = true, tiff = true, cr2 = true, cr3 = true, nef = true,
    arw = true, raf = true, orf = true, rw2 = true, psd = true }

function Catalog:addPhoto(path, stackWith, position)
    requireGate("catalog:addPhoto")
    if LrFileUtils.exists(path) ~= "file" then
        error("catalog:addPhoto: file does not exist: " .. path, 2)
    end
    if not importable[LrPathUtils.extension(path):lower()] then
        error("catalog:addPhoto: unsupported file format: " .. path, 2)
    end
    for _, p in ipairs(self.photos) do
        if p.path == path then
            error("catalog:addPhoto: already in the catalog: " .. path, 2)
        end
    end
    local photo = newPhoto(self, path, {})
    if stackWith then
        assert(getmetatable(stackWith) == Photo, "catalog:addPhoto: stackWithPhoto must be an LrPhoto")
        if LrPathUtils.parent(stackWith.path) ~= LrPathUtils.parent(path) then
            error("catalog:addPhoto: Lightroom stacks only within one folder", 2)
        end
        position = position or "below"
        assert(position == "above" or position == "below", "catalog:addPhoto: position must be 'above' or 'below'")
        stackWith.raw.stackPositionInFolder = stackWith.raw.stackPositionInFolder or 1
        photo.stackedWith = stackWith
        photo.stackPosition = position
        if position == "above" then
            photo.raw.stackPositionInFolder = 1
            stackWith.raw.stackPositionInFolder = stackWith.raw.stackPositionInFolder + 1
        else
            photo.raw.stackPositionInFolder = stackWith.raw.stackPositionInFolder + 1
        end
    end
    self.added = self.added or {}
    self.added[#self.added + 1] = photo
    return photo
end

function Catalog:createKeyword(name, _, _, _, returnExisting)
    requireGate("catalog:createKeyword")
    if self.keywords[name] and not returnExisting then
        return nil
    end
    return self:_keyword(name)
end

local LrApplication = {}

function LrApplication.activeCatalog()
    return sdk.catalog
end

function LrApplication.versionString()
    return "14.0 (stand-in)"
end

-- import -----------------------------------------------------------------------------------

local LrLogger = setmetatable({}, { __call = function(_, name) return newLogger(name) end })
local LrProgressScope = setmetatable({}, { __call = function(_, args) return newScope(args) end })
local LrExportSession = setmetatable({}, { __call = function(_, args) return newExportSession(args) end })

local LrShell = {}
function LrShell.revealInShell(path)
    dialog({ kind = "reveal", path = path })
end

local modules = {
    LrTasks = LrTasks, LrFunctionContext = LrFunctionContext, LrSocket = LrSocket, LrPathUtils = LrPathUtils,
    LrFileUtils = LrFileUtils, LrBinding = LrBinding, LrView = LrView, LrDialogs = LrDialogs,
    LrProgressScope = LrProgressScope, LrPrefs = LrPrefs, LrLogger = LrLogger, LrExportSession = LrExportSession,
    LrApplication = LrApplication, LrShell = LrShell,
}

function sdk.import(name)
    local m = modules[name]
    if not m then
        error("import: the stand-in has no '" .. tostring(name) .. "'", 2)
    end
    return m
end

--- Loads a plug-in file as Lightroom's require does (fresh each call within a world).
function sdk.requirePlugin(name)
    package.loaded[name] = nil
    return require(name)
end

--- Forgets every plug-in module so the next require loads it again (a plug-in reload).
function sdk.unloadPlugin()
    for name, path in pairs(package.loaded) do
        local _ = path
        if type(name) == "string" and LrFileUtils.exists(state.pluginPath .. "/" .. name .. ".lua") then
            package.loaded[name] = nil
        end
    end
end

package.path = (os.getenv("HOTPIXELS_ROOT") or ".") .. "/hotpixel.lrdevplugin/?.lua;" .. package.path

return sdk
