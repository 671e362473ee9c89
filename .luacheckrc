-- luacheck configuration for the Lightroom plugin (Lua 5.1) and its busted suite.
std = "lua51"
max_line_length = 120

-- Lightroom provides these to every plug-in script; plugin files define no globals of their own.
read_globals = { "import", "_PLUGIN", "LOC", "WIN_ENV", "MAC_ENV" }

stds.lrinfo = {
    -- Info.lua runs in a restricted loader that provides only these (Adobe's Programmer's Guide)
    read_globals = { "string", "LOC", "WIN_ENV", "MAC_ENV", "_VERSION" },
}
files["hotpixel.lrdevplugin/Info.lua"] = { std = "lrinfo" }

files["tests/lua"] = {
    std = "+busted",
    -- the SDK stand-in installs the globals Lightroom would provide
    globals = { "import", "_PLUGIN", "LOC", "WIN_ENV", "MAC_ENV" },
}
