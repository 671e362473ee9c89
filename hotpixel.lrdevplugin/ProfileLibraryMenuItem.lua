--[[----------------------------------------------------------------------------
ProfileLibraryMenuItem.lua: the menu item opens ProfileLibraryDialog in its own task (dialogs and
worker calls yield, which a menu callback may not do).
------------------------------------------------------------------------------]]

local LrFunctionContext = import "LrFunctionContext"

local ProfileLibraryDialog = require "ProfileLibraryDialog"

LrFunctionContext.postAsyncTaskWithContext("HotPixels ProfileLibrary", function(context)
    ProfileLibraryDialog.run(context)
end)
