--[[----------------------------------------------------------------------------
A deliberately misbehaving worker for the client's failure paths (the good
paths run against the real worker). Usage, as the client launches it through
a wrapper script:
  lua5.1 fake_worker.lua MODE --connect SEND_PORT RECV_PORT --token T [--log F] ...
MODE: wrong-token | protocol-2 | silent | exit-3 | die-after-hello
------------------------------------------------------------------------------]]

local socket = require "socket"
local cjson = require "cjson"

local mode = arg[1]
local sendPort, recvPort, token
for i = 2, #arg do
    if arg[i] == "--connect" then
        sendPort, recvPort = tonumber(arg[i + 1]), tonumber(arg[i + 2])
    elseif arg[i] == "--token" then
        token = arg[i + 1]
    end
end

if mode == "exit-3" then
    os.exit(3)
end

local requests = assert(socket.connect("127.0.0.1", sendPort)) -- we read requests here
local replies = assert(socket.connect("127.0.0.1", recvPort)) -- we write replies here

local function write(message)
    replies:send(cjson.encode(message) .. "\n")
end

local pid = tonumber((io.open("/proc/self/stat") or { read = function() return "0" end }):read("*l"):match("^%d+"))
write({ jsonrpc = "2.0", method = "$/token",
    params = { token = mode == "wrong-token" and "not-the-token" or token, pid = pid, protocol = 1 } })

while true do
    local line = requests:receive("*l")
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
    end
end
