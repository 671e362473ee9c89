--[[----------------------------------------------------------------------------
LearnMenuItem.lua: the menu item opens LearnDialog in its own task (dialogs and worker calls
yield, which a menu callback may not do).
------------------------------------------------------------------------------]]

local LrFunctionContext = import "LrFunctionContext"

local LearnDialog = require "LearnDialog"

LrFunctionContext.postAsyncTaskWithContext("HotPixels Learn", function(context)
    LearnDialog.run(context)
end)
