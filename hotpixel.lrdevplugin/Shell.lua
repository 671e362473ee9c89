--[[----------------------------------------------------------------------------
Shell.lua: command lines for LrTasks.execute, quoted for the system's shell.

On macOS LrTasks.execute runs the line through /bin/sh: single quotes protect
spaces and non-ASCII characters. On Windows cmd.exe strips the first and last
quote of a line that starts with a quote, so the whole line gets an extra outer
pair (as PS's cmdlineQuote and JPEGOptimizer do; docs/lightroom-sdk.md §3).
------------------------------------------------------------------------------]]

local Shell = {}

--- One argument quoted for /bin/sh (left bare when it holds only safe characters).
function Shell.quotePosix(arg)
    arg = tostring(arg)
    if arg:match("^[%w%-%._/:=@+,]+$") then
        return arg
    end
    return "'" .. arg:gsub("'", "'\\''") .. "'"
end

--- One argument quoted for cmd.exe. Windows paths cannot contain '"'; trailing
-- backslashes are doubled so they do not escape the closing quote.
function Shell.quoteWindows(arg)
    arg = tostring(arg)
    if arg:match("^[%w%-%._:=@+,\\]+$") then
        return arg
    end
    return '"' .. arg:gsub("(\\*)$", "%1%1") .. '"'
end

--- The command line that runs `argv` (an array of strings); with `outputPath`, stdout goes there.
function Shell.commandLine(argv, windows, outputPath)
    local quote = windows and Shell.quoteWindows or Shell.quotePosix
    local parts = {}
    for i, arg in ipairs(argv) do
        parts[i] = quote(arg)
    end
    local line = table.concat(parts, " ")
    if outputPath then
        line = line .. " > " .. quote(outputPath)
    end
    if windows then
        return '"' .. line .. '"'
    end
    return line
end

return Shell
