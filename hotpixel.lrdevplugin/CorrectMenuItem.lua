--[[----------------------------------------------------------------------------
CorrectMenuItem.lua: the menu item opens CorrectDialog in its own task (dialogs and
worker calls yield, which a menu callback may not do).
------------------------------------------------------------------------------]]

local LrFunctionContext = import "LrFunctionContext"

local CorrectDialog = require "CorrectDialog"

LrFunctionContext.postAsyncTaskWithContext("HotPixels Correct", function(context)
    CorrectDialog.run(context)
end)
