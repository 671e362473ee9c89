--[[----------------------------------------------------------------------------
ProfileCreateMenuItem.lua: the menu item opens ProfileCreateDialog in its own task (dialogs and
worker calls yield, which a menu callback may not do).
------------------------------------------------------------------------------]]

local LrFunctionContext = import "LrFunctionContext"

local ProfileCreateDialog = require "ProfileCreateDialog"

LrFunctionContext.postAsyncTaskWithContext("HotPixels ProfileCreate", function(context)
    ProfileCreateDialog.run(context)
end)
