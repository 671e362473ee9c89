--[[----------------------------------------------------------------------------
Info.lua: the plug-in's table of contents. Lightroom loads this file in a
restricted environment (string, LOC, WIN_ENV, MAC_ENV and _VERSION only), so it
holds data and nothing else; every menu item, the Plug-in Manager section, init
and shutdown each have their own file.
------------------------------------------------------------------------------]]

local menuItems = {
    {
        title = LOC "$$$/HotPixels/Menu/Correct=Correct Hot Pixels…",
        file = "CorrectMenuItem.lua",
        enabledWhen = "photosSelected",
    },
    {
        title = LOC "$$$/HotPixels/Menu/CreateProfile=Create Profile from Dark Frames…",
        file = "ProfileCreateMenuItem.lua",
        enabledWhen = "photosSelected",
    },
    {
        title = LOC "$$$/HotPixels/Menu/Learn=Learn Hot Pixels from Selected Photos…",
        file = "LearnMenuItem.lua",
        enabledWhen = "photosSelected",
    },
    {
        title = LOC "$$$/HotPixels/Menu/Library=Profile Library…",
        file = "ProfileLibraryMenuItem.lua",
    },
}

return {
    LrSdkVersion = 14.0,
    LrSdkMinimumVersion = 6.0, -- LrSocket arrived with SDK 6.0

    LrToolkitIdentifier = "app.hotpixels.lightroom",
    LrPluginName = LOC "$$$/HotPixels/PluginName=HotPixels",

    LrLibraryMenuItems = menuItems,  -- Library > Plug-in Extras
    LrExportMenuItems = menuItems,   -- File > Plug-in Extras

    LrPluginInfoProvider = "PluginManager.lua",
    LrInitPlugin = "Init.lua",
    LrShutdownPlugin = "Shutdown.lua",
    LrShutdownApp = "ShutdownApp.lua",

    VERSION = { major = 0, minor = 1, revision = 0, build = 1 },
}
