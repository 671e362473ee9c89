--[[----------------------------------------------------------------------------
PluginManager.lua (LrPluginInfoProvider): the plug-in's section in Lightroom's
Plug-in Manager: worker status, version, device and model; the profile library
folder; where the logs are; a button that restarts the worker.

startDialog blocks the Plug-in Manager, so the worker's status is fetched in a
task that fills the bound properties when it arrives. Opening the Plug-in Manager
never starts the worker (an 800 MB process): a running one is asked for its
details; otherwise the section says it starts on first use or with
"Restart Worker".
------------------------------------------------------------------------------]]

local LrDialogs = import "LrDialogs"
local LrShell = import "LrShell"
local LrTasks = import "LrTasks"
local LrView = import "LrView"

local Loc = require "Loc"
local Log = require "Log"
local Settings = require "Settings"
local Ui = require "Ui"
local WorkerClient = require "WorkerClient"

local bind = LrView.bind

local PluginManager = {}

--- Copies worker.hello's answer (or the failure) into the bound properties.
function PluginManager.showHello(props, hello, err)
    local client = WorkerClient.shared()
    if not hello then
        props.workerStatus = Loc.text("PluginManager/1", "not running: ") ..
            tostring(err and err.message or client.lastFailure or "?")
        return
    end
    local model = Ui.value(hello.model) or {}
    props.workerStatus = client:statusText()
    props.workerVersion = string.format("%s (protocol %s)", tostring(Ui.value(hello.worker_version) or "?"),
        tostring(hello.protocol))
    props.workerDevice = tostring(Ui.value(hello.device) or "?")
    local state = Ui.value(model.loaded) and Loc.text("PluginManager/ModelLoaded", "loaded")
        or Ui.value(model.loading) and Loc.text("PluginManager/ModelLoading", "loading…")
        or Loc.text("PluginManager/ModelLazy", "loads with the first correction")
    props.workerModel = Ui.value(model.name) and string.format("%s (%s)", model.name, state)
        or Loc.text("PluginManager/NoModel", "no residual model found")
    if not props.libraryFolder or props.libraryFolder == "" then
        props.libraryDefault = tostring(Ui.value(hello.library) or "")
    end
end

--- Fills props from a running worker (never starts one). Call from a task.
function PluginManager.refresh(props)
    if not WorkerClient.sharedIsRunning() then
        props.workerStatus = WorkerClient.shared():statusText()
        props.workerModel = Loc.text("PluginManager/ModelUnknown", "(known once the worker runs)")
        return
    end
    local hello, err = WorkerClient.shared():request("worker.hello", { protocol = WorkerClient.PROTOCOL,
        client = "plug-in manager" })
    PluginManager.showHello(props, hello, err)
end

function PluginManager.startDialog(props)
    props.libraryFolder = Settings.get("libraryFolder") or ""
    props.libraryDefault = ""
    props.workerStatus = WorkerClient.shared():statusText()
    props.workerVersion, props.workerDevice, props.workerModel = "", "", ""
    props.pluginLog = Log.pluginLogPath()
    props.workerLog = Log.workerLogPath()
    LrTasks.startAsyncTask(function() PluginManager.refresh(props) end, "HotPixels status")
end

function PluginManager.endDialog(props)
    Settings.prefs().libraryFolder = props.libraryFolder ~= "" and props.libraryFolder or nil
end

function PluginManager.chooseLibrary(props)
    local picked = LrDialogs.runOpenPanel { title = Loc.text("PluginManager/3", "Profile library folder"),
        canChooseFiles = false,
        canChooseDirectories = true, canCreateDirectories = true, allowsMultipleSelection = false }
    if picked and picked[1] then
        props.libraryFolder = picked[1]
        Settings.prefs().libraryFolder = picked[1]
    end
end

function PluginManager.restart(props)
    props.workerStatus = "restarting…"
    local hello, err = WorkerClient.shared():restart()
    PluginManager.showHello(props, hello, err)
end

local function row(f, label, key)
    return f:row {
        f:static_text { title = label, width = LrView.share("hp_label"), alignment = "right" },
        f:static_text { title = bind(key), fill_horizontal = 1, width_in_chars = 60 },
    }
end

function PluginManager.sectionsForTopOfDialog(f, props)
    return {
        {
            title = Loc.text("PluginManager/4", "HotPixels"),
            bind_to_object = props,
            row(f, "Worker:", "workerStatus"),
            row(f, "Version:", "workerVersion"),
            row(f, "Device:", "workerDevice"),
            row(f, "Model:", "workerModel"),
            f:row {
                f:static_text { title = "", width = LrView.share("hp_label") },
                f:push_button { title = Loc.text("PluginManager/5", "Restart Worker"), action = function()
                    LrTasks.startAsyncTask(function() PluginManager.restart(props) end, "HotPixels restart")
                end },
            },
            f:row {
                f:static_text { title = Loc.text("PluginManager/6", "Profile library:"),
                    width = LrView.share("hp_label"), alignment = "right" },
                f:edit_field { value = bind("libraryFolder"), width_in_chars = 40 },
                f:push_button { title = Loc.text("PluginManager/7", "Choose…"),
                    action = function() PluginManager.chooseLibrary(props) end },
            },
            row(f, "(default):", "libraryDefault"),
            row(f, Loc.text("PluginManager/8", "Plug-in log:"), "pluginLog"),
            row(f, Loc.text("PluginManager/9", "Worker log:"), "workerLog"),
            f:row {
                f:static_text { title = "", width = LrView.share("hp_label") },
                f:push_button { title = Loc.text("PluginManager/10", "Show Logs"),
                    action = function() LrShell.revealInShell(props.workerLog) end },
            },
        },
    }
end

return PluginManager
