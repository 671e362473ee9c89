--[[----------------------------------------------------------------------------
WorkerClient.lua: the one place that talks to the HotPixels worker, and the
only file that touches LrSocket.

How a session works (docs/protocol.md, docs/lightroom-sdk.md §2):
  1. A long-lived task binds two loopback LrSockets with port 0: a "send" socket
     (we write requests; the worker reads) and a "receive" socket (the worker
     writes replies and notifications). `onConnecting` tells us each port.
  2. Another task launches the worker with LrTasks.execute (which blocks only
     that task until the worker exits), passing both ports and a fresh token.
  3. The worker's first line on the receive socket is `$/token`; a wrong or
     missing token closes both sockets. Then `worker.hello` checks the protocol.
  4. Requests carry JSON-RPC ids; replies resolve the pending-request table.
     `$/progress` drives the caller's LrProgressScope; cancelling that scope
     sends `$/cancelRequest`. onMessage cannot yield, so it only queues lines;
     tasks drain the queue.
  5. While idle, a heartbeat (`worker.hello`) proves the worker is alive, since
     a send-mode socket may not notice a dead peer. A dead worker (process
     exit, a closed socket, no answer) ends the session; the next request
     starts a new one (fresh sockets, never reconnect()) once; after that the
     client explains what failed.
------------------------------------------------------------------------------]]

local LrTasks = import "LrTasks"
local LrSocket = import "LrSocket"
local LrFunctionContext = import "LrFunctionContext"
local LrPathUtils = import "LrPathUtils"
local LrFileUtils = import "LrFileUtils"

local Json = require "Json"
local Loc = require "Loc"
local Log = require "Log"
local Settings = require "Settings"
local Shell = require "Shell"

local WorkerClient = {}
WorkerClient.__index = WorkerClient

WorkerClient.PROTOCOL = 1
WorkerClient.MAX_RESTARTS = 1
WorkerClient.CANCELLED = -32800

local POLL_S = 0.02

-- Wall-clock seconds. os.time's whole seconds suffice: every timeout here is several seconds long.
local function wallClock()
    return os.time()
end

-- Errors ------------------------------------------------------------------------

--- An error value: {code, name, message, data}. Plug-in side errors have names
-- starting "worker_" and no JSON-RPC code (except cancellation).
local function newError(name, message, code, data)
    return { name = name, message = message, code = code, data = data }
end
WorkerClient.newError = newError

--- The exit code and signal in a status from LrTasks.execute. Lightroom documents only "the exit
-- status"; on macOS it may be a raw wait status (exit code * 256, or a signal in the low 7 bits) or the
-- shell's decoded one, so both are understood. Windows returns the program's exit code as is.
function WorkerClient.decodeStatus(status, windows)
    if type(status) ~= "number" then
        return nil, nil
    end
    if windows or status < 256 then
        if not windows and status > 128 and status < 160 then
            return nil, status - 128 -- the shell's "killed by signal n"
        end
        return status, nil
    end
    if status % 256 == 0 then
        return math.floor(status / 256), nil
    end
    return nil, status % 128
end

local SIGNALS = { [2] = "interrupted", [6] = "aborted", [9] = "killed", [11] = Loc.text("Worker/1",
    "crashed (segmentation fault)"),
    [15] = "terminated" }

local function describeExit(status, windows)
    if windows == nil then
        windows = WIN_ENV
    end
    if status == nil then
        return Loc.text("Worker/Exit/Stopped", "it stopped")
    end
    local code, signal = WorkerClient.decodeStatus(status, windows)
    if signal then
        return Loc.text("Worker/Exit/Signal", "it was ^1 (signal ^2)", SIGNALS[signal] or "stopped by the system",
            signal)
    elseif code == 127 or (windows and (code == 9009 or code == 3)) then
        return Loc.text("Worker/Exit/NotFound", "the worker program was not found (exit status ^1)", code)
    elseif code == 126 then
        return Loc.text("Worker/Exit/NotExecutable", "the worker program is not executable: its permissions, " ..
            "or an antivirus, stopped it (exit status 126)")
    end
    return Loc.text("Worker/Exit/Code", "it ended with exit status ^1", code)
end
WorkerClient.describeExit = describeExit

-- Command line ---------------------------------------------------------------------

--- The shell command that runs `argv` (see Shell.commandLine: Windows gets the extra outer quotes).
function WorkerClient.commandLine(argv, windows)
    return Shell.commandLine(argv, windows)
end

local function readFirstLine(path)
    local f = io.open(path, "r")
    if not f then
        return nil
    end
    local text = f:read("*l")
    f:close()
    if text then
        text = text:gsub("^%s+", ""):gsub("%s+$", "")
    end
    return text ~= "" and text or nil
end

--- The worker program to launch, as an argv prefix, and where it came from.
-- Order: the "workerPath" preference; the frozen worker in bin/<os>-<arch>/; the
-- development install named in PluginPath.txt (its .venv, else its run.sh).
function WorkerClient.findWorker()
    local override = Settings.get("workerPath")
    if override and override ~= "" then
        if LrFileUtils.exists(override) == "file" then
            return { override }, Loc.text("Worker/2", "the workerPath preference")
        end
        return nil, Loc.text("Worker/3", "the workerPath preference names a missing file: ") .. override
    end
    local exeName = WIN_ENV and "hotpixels-worker.exe" or "hotpixels-worker"
    local binDir = LrPathUtils.child(_PLUGIN.path, "bin")
    local osNames = WIN_ENV and { "windows" } or MAC_ENV and { "macos", "darwin" } or { "linux" }
    local arches = { "arm64", "aarch64", "x86_64", "amd64", "x64" }
    if MAC_ENV or WIN_ENV then
        -- prefer the machine's own architecture when the system says which (unverified API: guarded)
        local ok, LrSystemInfo = pcall(import, "LrSystemInfo")
        local arch = ok and LrSystemInfo and LrSystemInfo.architecture and LrSystemInfo.architecture()
        if arch and not tostring(arch):lower():find("arm") then
            arches = { "x86_64", "amd64", "x64", "arm64", "aarch64" }
        end
    end
    for _, osName in ipairs(osNames) do
        for _, arch in ipairs(arches) do
            local exe = LrPathUtils.child(LrPathUtils.child(LrPathUtils.child(binDir, osName .. "-" .. arch),
                "hotpixels-worker"), exeName)
            if LrFileUtils.exists(exe) == "file" then
                return { exe }, Loc.text("Worker/4", "the bundled worker")
            end
        end
    end
    local root = readFirstLine(LrPathUtils.child(_PLUGIN.path, "PluginPath.txt"))
    if root then
        local venvExe = WIN_ENV and LrPathUtils.child(LrPathUtils.child(LrPathUtils.child(root, ".venv"), "Scripts"),
            exeName) or LrPathUtils.child(LrPathUtils.child(LrPathUtils.child(root, ".venv"), "bin"), exeName)
        if LrFileUtils.exists(venvExe) == "file" then
            return { venvExe }, Loc.text("Worker/5", "the development install in ") .. root
        end
        local runScript = LrPathUtils.child(root, WIN_ENV and "run.bat" or "run.sh")
        if LrFileUtils.exists(runScript) == "file" then
            return { runScript, "serve" }, Loc.text("Worker/6", "the development checkout in ") .. root
        end
    end
    return nil, Loc.text("Worker/NotFound", "no worker found: the plug-in folder has no worker for this system " ..
        "(its bin folder is missing). Reinstall the plug-in from its download.")
end

-- Tokens ------------------------------------------------------------------------------

local seeded = false

--- A fresh 32-hex-digit token for one worker session.
function WorkerClient.newToken()
    if not seeded then
        local addr = tonumber(tostring({}):match("0x(%x+)") or "0", 16) or 0
        math.randomseed((os.time() + math.floor(os.clock() * 1e6) + addr) % 2147483647)
        seeded = true
    end
    local digits = {}
    for i = 1, 32 do
        digits[i] = string.format("%x", math.random(0, 15))
    end
    return table.concat(digits)
end

-- The client ------------------------------------------------------------------------------

--- A client with no worker yet; the first request starts one.
-- opts: startTimeoutS, requestIdleTimeoutS, heartbeatS (defaults from Settings).
function WorkerClient.new(opts)
    opts = opts or {}
    local self = setmetatable({}, WorkerClient)
    self.startTimeoutS = opts.startTimeoutS or Settings.get("startTimeoutS")
    self.requestIdleTimeoutS = opts.requestIdleTimeoutS or Settings.get("requestIdleTimeoutS")
    self.heartbeatS = opts.heartbeatS or Settings.get("heartbeatS")
    self.nextId = 1
    self.restarts = 0
    self.sessions = 0
    self.session = nil
    self.hello = nil
    self.lastFailure = nil
    return self
end

local shared

--- The plug-in's one client (one worker per Lightroom session).
function WorkerClient.shared()
    if not shared then
        shared = WorkerClient.new()
    end
    return shared
end

--- Forgets the shared client (after it was stopped), e.g. on plug-in reload.
function WorkerClient.resetShared()
    shared = nil
end

--- Whether the shared client exists and holds a live worker (no yield).
function WorkerClient.sharedIsRunning()
    return shared ~= nil and shared:isRunning()
end

function WorkerClient:isRunning()
    local s = self.session
    return s ~= nil and s.ready == true and not s.ended
end

--- A short description for the Plug-in Manager.
function WorkerClient:statusText()
    local s = self.session
    if s and s.ready and not s.ended then
        return Loc.text("Worker/Status/Running", "running (pid ^1)", tostring(s.pid))
    elseif s and not s.ended then
        return Loc.text("Worker/Status/Starting", "starting…")
    elseif self.lastFailure then
        return Loc.text("Worker/Status/Stopped", "stopped: ^1", self.lastFailure)
    end
    return Loc.text("Worker/Status/NotStarted", "not started (it starts when you first use a command, or with " ..
        "Restart Worker)")
end

-- Session internals ------------------------------------------------------------------------

local function send(s, message)
    if s.ended or not s.sendSocket then
        return false
    end
    local ok, err = pcall(function() s.sendSocket:send(Json.encode(message) .. "\n") end)
    if not ok then
        Log.warn("send failed:", err)
    end
    return ok
end

function WorkerClient:_endSession(s, reason)
    if s.ended then
        return
    end
    s.ended = true
    s.endReason = reason
    Log.info("worker session", s.number, "ended:", reason)
    for id, p in pairs(s.pending) do
        if not p.done then
            p.done = true
            p.error = newError("worker_stopped", Loc.text("Worker/7", "The HotPixels worker stopped while working " ..
                "on this request (") ..
                reason .. ").")
        end
        s.pending[id] = nil
    end
    for _, sock in ipairs({ s.sendSocket, s.recvSocket }) do
        pcall(function() sock:close() end)
    end
    if s.ready then
        self.lastFailure = reason
        self.everDied = not s.stopping
    end
end

-- The pending request a notification's `params.id` names (nil if none), now marked as heard from.
local function heardOf(s, params)
    local p = s.pending[params.id]
    if p then
        p.lastActivity = wallClock()
    end
    return p
end

-- Handles one line from the receive socket (never yields).
function WorkerClient:_handleLine(s, line)
    line = line:gsub("[\r\n]+$", "")
    if line == "" then
        return
    end
    local message, err = Json.tryDecode(line)
    if type(message) ~= "table" then
        Log.warn("ignoring a line that is not JSON from the worker:", err, line:sub(1, 200))
        return
    end
    s.lastActivity = wallClock()
    if not s.tokenOk then
        local params = message.params
        if message.method == "$/token" and type(params) == "table" and params.token == s.token then
            s.tokenOk = true
            s.pid = params.pid
            Log.info("worker session", s.number, "token verified; pid", params.pid)
        else
            self:_endSession(s, Loc.text("Worker/8", "a program that is not our worker connected (wrong or " ..
                "missing token)"))
            s.failure = newError("worker_token", Loc.text("Worker/9", "Something other than the HotPixels worker " ..
                "connected to the plug-in (its first message did not carry the right token), so the plug-in " ..
                "closed the connection."))
        end
        return
    end
    if message.method == "$/progress" then
        local params = message.params or {}
        local p = heardOf(s, params)
        if p then
            if p.scope then
                if type(params.done) == "number" and type(params.total) == "number" and params.total > 0 then
                    p.scope:setPortionComplete(params.done, params.total)
                end
                if type(params.message) == "string" and params.message ~= "" then
                    p.scope:setCaption(params.message)
                end
            end
            if p.onProgress then
                p.onProgress(params)
            end
        end
        return
    end
    if message.method == "$/result" then
        -- one image of a multi-image request is final (issue 16): its per-image result, as in results[]
        local params = message.params or {}
        local p = heardOf(s, params)
        if p then
            if p.onResult then
                p.onResult(params)
            end
        end
        return
    end
    if message.method then
        Log.trace("worker notification", message.method)
        return
    end
    local p = message.id ~= nil and message.id ~= Json.null and s.pending[message.id]
    if not p then
        Log.warn("a reply for no pending request:", line:sub(1, 200))
        return
    end
    p.done = true
    if message.error ~= nil and message.error ~= Json.null then
        local e = message.error
        local data = type(e.data) == "table" and e.data or {}
        p.error = newError(data.name or "rpc_error", e.message or Loc.text("Worker/10", "the worker reported an error"),
            e.code, data)
        if e.code == WorkerClient.CANCELLED then
            p.error.cancelled = true
        end
    else
        p.result = message.result
    end
end

-- Drains the receive queue (called from tasks only; never from onMessage).
function WorkerClient:_pump(s)
    while #s.queue > 0 and not (s.ended and not s.tokenOk) do
        self:_handleLine(s, table.remove(s.queue, 1))
    end
    if s.exited and not s.ended then
        self:_endSession(s, Loc.text("Worker/11", "the worker process ended, ") .. describeExit(s.exitStatus))
    end
end

-- Sends one request in session `s` and waits for its reply; returns result, err.
function WorkerClient:_call(s, method, params, opts)
    opts = opts or {}
    local id = self.nextId
    self.nextId = id + 1
    local p = { id = id, method = method, scope = opts.scope, onProgress = opts.onProgress, onResult = opts.onResult,
        lastActivity = wallClock() }
    s.pending[id] = p
    if opts.handle then
        opts.handle.id, opts.handle.session = id, s
    end
    if not send(s, { jsonrpc = "2.0", id = id, method = method, params = params or Json.object() }) then
        s.pending[id] = nil
        return nil, newError("worker_stopped", Loc.text("Worker/12", "The HotPixels worker is not connected."))
    end
    local idleTimeout = opts.idleTimeoutS or self.requestIdleTimeoutS
    while not p.done do
        LrTasks.sleep(POLL_S)
        self:_pump(s)
        if p.done then
            break
        end
        local canceled = (opts.scope and opts.scope:isCanceled())
            or (opts.cancelScope and opts.cancelScope:isCanceled())
        if canceled and not p.cancelSent then
            p.cancelSent = true
            p.lastActivity = wallClock()
            Log.info("cancelling request", id, method)
            send(s, { jsonrpc = "2.0", method = "$/cancelRequest", params = { id = id } })
        end
        if s.ended then
            break
        end
        if wallClock() - p.lastActivity > idleTimeout then
            self:_endSession(s, string.format(Loc.text("Worker/13", "%sno reply to %s for %d s"), opts.heartbeat and
                Loc.text("Worker/14", "the worker stopped answering the heartbeat: ") or "", method, idleTimeout))
        end
    end
    s.pending[id] = nil
    if not p.done then
        return nil, newError("worker_stopped", Loc.text("Worker/15", "The HotPixels worker stopped while working " ..
            "on this request (") ..
            tostring(s.endReason) .. ").")
    end
    return p.result, p.error
end

-- The session task: binds the sockets, launches the worker, keeps the sockets'
-- function context alive, and sends the heartbeat while idle.
function WorkerClient:_runSession(s, ctx)
    local function onError(which)
        return function(_, err)
            if err == "timeout" then
                -- an unconnected receive socket reports "timeout" (about every 10 s) and then, as the SDK
                -- says, needs reconnect(); the session loop calls it (callbacks cannot yield). A send
                -- socket is never reconnected (M2L: that hung Lightroom); its timeout is only logged.
                s[which .. "TimedOut"] = true
                Log.trace("socket", which, "timed out waiting for the worker")
            else
                Log.warn("socket", which, "error:", err)
                s.socketError = tostring(err)
            end
        end
    end
    local function onConnecting(which)
        return function(_, port)
            local key = which .. "Port"
            if s.launched and s[key] ~= port then
                -- reconnect() moved the socket to another port: the worker cannot find it any more
                s.portMoved = true
            end
            s[key] = port
        end
    end
    local function onClosed(which)
        return function()
            if s[which .. "Connected"] then
                s[which .. "Closed"] = true
            end
        end
    end
    s.sendSocket = LrSocket.bind {
        functionContext = ctx, plugin = _PLUGIN, port = 0, mode = "send",
        onConnecting = onConnecting("send"),
        onConnected = function() s.sendConnected = true end,
        onMessage = function() end,
        onClosed = onClosed("send"),
        onError = onError("send"),
    }
    s.recvSocket = LrSocket.bind {
        functionContext = ctx, plugin = _PLUGIN, port = 0, mode = "receive",
        onConnecting = onConnecting("recv"),
        onConnected = function() s.recvConnected = true end,
        onMessage = function(_, message) s.queue[#s.queue + 1] = message end,
        onClosed = onClosed("recv"),
        onError = onError("recv"),
    }
    local deadline = wallClock() + self.startTimeoutS
    while not (s.sendPort and s.recvPort) and not s.ended do
        if wallClock() > deadline then
            self:_endSession(s, Loc.text("Worker/16", "the plug-in could not open its loopback sockets"))
            break
        end
        LrTasks.sleep(POLL_S)
    end
    if not s.ended then
        local argv = {}
        for i, a in ipairs(s.program) do
            argv[i] = a
        end
        for _, a in ipairs({ "--connect", tostring(s.sendPort), tostring(s.recvPort), "--token", s.token,
            "--log", Log.workerLogPath() }) do
            argv[#argv + 1] = a
        end
        local library = Settings.get("libraryFolder")
        if library and library ~= "" then
            argv[#argv + 1] = "--library"
            argv[#argv + 1] = library
        end
        s.command = WorkerClient.commandLine(argv, WIN_ENV)
        s.launched = true
        Log.info("starting worker session", s.number, "from", s.programSource, ":",
            (s.command:gsub(s.token, "<token>")))
        LrTasks.startAsyncTask(function()
            s.exitStatus = LrTasks.execute(s.command)
            s.exited = true
            Log.info("worker session", s.number, "process ended,", describeExit(s.exitStatus))
        end, "HotPixels worker process")
    end
    while not s.ended do
        LrTasks.sleep(0.05)
        self:_pump(s)
        if s.recvTimedOut and not s.ended then
            s.recvTimedOut = false
            s.recvReconnects = (s.recvReconnects or 0) + 1
            local ok, err = LrTasks.pcall(function() s.recvSocket:reconnect() end)
            if not ok then
                Log.warn("reconnect() of the receive socket failed:", err)
            end
        end
        if s.portMoved and not s.ended then
            self:_endSession(s, Loc.text("Worker/PortMoved", "Lightroom moved the plug-in's socket to another " ..
                "port while the worker was starting"))
        end
        if (s.sendClosed or s.recvClosed) and not s.ended then
            -- a closed socket usually means the process is ending: wait a moment for its exit status,
            -- which explains more than the close itself (_pump ends the session when it arrives)
            s.closedAt = s.closedAt or wallClock()
            if wallClock() - s.closedAt >= 2 then
                self:_endSession(s, Loc.text("Worker/17", "the worker closed its connection"))
            end
        end
        if s.ready and not s.ended and next(s.pending) == nil and self.heartbeatS > 0
            and wallClock() - s.lastActivity >= self.heartbeatS then
            s.lastActivity = wallClock()
            local _, err = self:_call(s, "worker.hello", { protocol = WorkerClient.PROTOCOL, client = "heartbeat" },
                { idleTimeoutS = math.min(self.requestIdleTimeoutS, 30), heartbeat = true })
            if err and not s.ended then
                self:_endSession(s, Loc.text("Worker/18", "the worker stopped answering the heartbeat: ") ..
                    tostring(err.message))
            end
        end
    end
end

-- Starts a new session and waits until it is ready; returns the session or nil, err.
function WorkerClient:_start()
    local program, source = WorkerClient.findWorker()
    if not program then
        self.lastFailure = source
        return nil, newError("worker_unavailable", Loc.text("Worker/19", "The HotPixels worker could not be " ..
            "started: ") .. source)
    end
    self.sessions = self.sessions + 1
    local s = { number = self.sessions, token = WorkerClient.newToken(), queue = {}, pending = {},
        program = program, programSource = source, lastActivity = wallClock() }
    self.session = s
    LrFunctionContext.postAsyncTaskWithContext("HotPixels worker session", function(ctx)
        self:_runSession(s, ctx)
    end)
    local deadline = wallClock() + self.startTimeoutS
    while not (s.tokenOk and s.sendConnected) and not s.ended do
        LrTasks.sleep(POLL_S)
        self:_pump(s)
        if wallClock() > deadline then
            self:_endSession(s, string.format(Loc.text("Worker/20", "the worker did not connect within %d s"),
                self.startTimeoutS))
        end
    end
    local function fail(err)
        self:_endSession(s, err.message)
        self.lastFailure = err.message
        return nil, err
    end
    if s.ended then
        local reason = s.endReason
        if s.exited then
            reason = Loc.text("Worker/21", "the worker ended before it connected, ") .. describeExit(s.exitStatus)
        end
        return fail(s.failure or newError("worker_unavailable", Loc.text("Worker/22", "The HotPixels worker could " ..
            "not be started (") ..
            reason .. "). Command: " .. tostring(s.command) .. Loc.text("Worker/23", ". Its log: ") ..
                Log.workerLogPath()))
    end
    local hello, err = self:_call(s, "worker.hello", { protocol = WorkerClient.PROTOCOL, client = "lightroom" },
        { idleTimeoutS = self.startTimeoutS })
    if not hello then
        return fail(newError("worker_unavailable", Loc.text("Worker/24", "The HotPixels worker did not answer " ..
            "worker.hello: ") ..
            tostring(err and err.message)))
    end
    if hello.protocol ~= WorkerClient.PROTOCOL then
        local e = newError("worker_protocol", string.format(Loc.text("Worker/25", "This HotPixels worker speaks " ..
            "protocol %s but the plug-in needs protocol %d. The plug-in and its worker come from different " ..
            "versions: reinstall the plug-in from one download."), tostring(hello.protocol), WorkerClient.PROTOCOL))
        send(s, { jsonrpc = "2.0", id = Json.null, method = "worker.shutdown", params = Json.object() })
        return fail(e)
    end
    s.ready = true
    self.hello = hello
    self.lastFailure = nil
    Log.info("worker session", s.number, "ready: version", hello.worker_version, "device", hello.device)
    return s
end

-- A ready session: the live one, a new one on first use, or one restart after a death.
function WorkerClient:_ensure()
    while self.starting do -- another task is starting the worker: wait for its outcome
        LrTasks.sleep(POLL_S)
    end
    local s = self.session
    if s and s.ready and not s.ended then
        return s
    end
    if self.everDied then
        if self.restarts >= WorkerClient.MAX_RESTARTS then
            return nil, newError("worker_failed", Loc.text("Worker/26", "The HotPixels worker stopped again after " ..
                "being restarted once (") ..
                tostring(self.lastFailure) .. Loc.text("Worker/27", "). It will not be restarted automatically: " ..
                    "see its log at ") ..
                Log.workerLogPath() .. Loc.text("Worker/28", ", then use 'Restart worker' in the Plug-in Manager."))
        end
        self.restarts = self.restarts + 1
        Log.warn("restarting the worker after:", self.lastFailure)
        self.everDied = false
    end
    self.starting = true
    local ok, started, err = LrTasks.pcall(self._start, self)
    self.starting = false
    if not ok then
        return nil, newError("worker_unavailable", Loc.text("Worker/29", "The HotPixels worker could not be " ..
            "started: ") .. tostring(started))
    end
    return started, err
end

--- Starts the worker if needed; returns worker.hello's result or nil, err. Call from a task.
function WorkerClient:ensureStarted()
    local s, err = self:_ensure()
    if not s then
        return nil, err
    end
    return self.hello
end

--- Sends one request and waits for its reply; returns result or nil, err (err.message is for people).
-- opts.scope: an LrProgressScope that `$/progress` drives and whose cancel sends `$/cancelRequest`;
-- opts.cancelScope: another scope whose cancel also cancels; opts.idleTimeoutS; opts.onProgress(params);
-- opts.onResult(params): each `$/result` notification ({id, index, total, result}) as it arrives (called in a
-- task, never inside a socket callback); opts.handle: a table that receives the request's id (cancelPart).
function WorkerClient:request(method, params, opts)
    local s, err = self:_ensure()
    if not s then
        return nil, err
    end
    return self:_call(s, method, params, opts)
end

--- Cancels one image of a running multi-image request (`$/cancelRequest {id, path}`): its result
-- becomes a "cancelled" error and the other images go on. `handle` is the table passed as opts.handle.
function WorkerClient.cancelPart(handle, path)
    local s = handle and handle.session
    if not s or s.ended or not s.pending[handle.id] then
        return false
    end
    Log.info("cancelling", path, "of request", handle.id)
    return send(s, { jsonrpc = "2.0", method = "$/cancelRequest", params = { id = handle.id, path = path } })
end

--- Sends a request through the shared client, adding the profile library folder when one is set.
function WorkerClient.call(method, params, opts)
    params = params or Json.object()
    local library = Settings.get("libraryFolder")
    local takesLibrary = method:match("^profiles%.") or method == "image.correct" or method == "image.scanBatch"
        or method == "image.preview"
    if library and library ~= "" and params.library == nil and takesLibrary then
        params.library = library
    end
    return WorkerClient.shared():request(method, params, opts)
end

--- The pid of the live worker, if any (tests kill it to check the restart).
function WorkerClient:pid()
    local s = self.session
    return s and not s.ended and s.pid or nil
end

--- Asks the worker to exit (worker.shutdown), then closes the sockets. Call from a task.
function WorkerClient:stop(timeoutS)
    local s = self.session
    if not s or s.ended then
        return
    end
    s.stopping = true
    if s.ready then
        self:_call(s, "worker.shutdown", Json.object(), { idleTimeoutS = timeoutS or 5 })
    end
    self:_endSession(s, Loc.text("Worker/30", "stopped by the plug-in"))
end

--- Like stop, but never yields: sends worker.shutdown without waiting, then closes the sockets.
-- For shutdown scripts that may not run in a task.
function WorkerClient:stopNow()
    local s = self.session
    if not s or s.ended then
        return
    end
    s.stopping = true
    send(s, { jsonrpc = "2.0", id = self.nextId, method = "worker.shutdown", params = Json.object() })
    self.nextId = self.nextId + 1
    self:_endSession(s, Loc.text("Worker/31", "stopped by the plug-in"))
end

--- Stops the worker and starts a fresh one, forgetting earlier failures (the Plug-in Manager's button).
function WorkerClient:restart()
    self:stop()
    self.restarts = 0
    self.everDied = false
    self.lastFailure = nil
    return self:ensureStarted()
end

return WorkerClient
