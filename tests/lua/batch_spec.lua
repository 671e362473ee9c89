-- "Correct Hot Pixels…" on a series of frames: a defect stays on the same site in every frame from one
-- body while the stars move, so the plug-in first asks the worker to compare the frames
-- (image.scanBatch) and names that scan in every correction (batch_id). The worker here is
-- support/fake_worker.lua in a series mode, which records every request it reads.
package.path = "tests/lua/support/?.lua;" .. package.path
local world = require "world"
local sdk = world.sdk

local SERIES_TEXT = "Frames of the same series"

-- A fresh world whose worker is the fake in `mode`; returns the file it records requests in.
local function withFakeWorker(mode)
    local record = sdk.makeTempDir("record") .. "/requests.jsonl"
    world.fresh({ workerPath = world.fakeWorker(mode, record) })
    return record
end

-- Four tripod frames of one body: three defects in every frame, and a star that moves.
local function tripodFrames(count)
    local stars = {}
    for i = 1, count do
        stars[i] = { string.format("%d:%d", 20 + i, 30 + 2 * i) }
    end
    return world.fakeFrames(count, { defects = { "10:12", "33:7", "50:41" }, extra = stars })
end

local function summaryText(seen, text)
    return sdk.view.withTitle(seen.summary.contents, text)
end

local function seriesText(seen)
    local box
    for _, node in ipairs(sdk.view.nodes(seen.summary.contents)) do
        if node.kind == "group_box" and node.title == SERIES_TEXT then
            box = node
        end
    end
    return box and box[1].title
end

-- Every image.correct the fake worker received went without a batch_id; returns how many there were.
local function correctedWithoutBatchId(record)
    local corrections = world.recorded(record, "image.correct")
    for _, msg in ipairs(corrections) do
        assert.is_nil(msg.params.batch_id)
    end
    return #corrections
end

local function outputs(folder)
    local names = {}
    for _, name in ipairs(world.listDir(folder)) do
        if name:find("_hotpixels", 1, true) then
            names[#names + 1] = name
        end
    end
    return names
end

describe("Correct Hot Pixels… on a series of frames", function()
    local CorrectDialog, BatchScan

    -- the plug-in's modules, loaded after world.fresh (which unloads them)
    local function load()
        CorrectDialog = require "CorrectDialog"
        BatchScan = require "BatchScan"
    end

    after_each(function()
        world.stopWorker()
        assert.are.same({}, sdk.state and sdk.state.taskErrors or {})
        assert.are.same({}, sdk.state and sdk.state.callbackErrors or {})
    end)

    it("correcting 4 tripod frames compares them once, names that scan in every correction, and the summary " ..
        "counts the recurring defects it repaired and proposes for the profile", function()
        local record = withFakeWorker("series")
        load()
        local frames = tripodFrames(4)
        world.selectFiles(frames)
        local captions = {}
        sdk.onProgress(function(scope, what, caption)
            if what == "caption" and scope.title == "Correcting hot pixels" then
                captions[#captions + 1] = caption
            end
        end)
        local seen = world.answerCorrectDialog({})

        local summary = world.runCommand(CorrectDialog)

        assert.are.equal(4, #summary.corrected, summary.failed[1] and summary.failed[1].failure)
        local option = sdk.view.withTitle(seen.dialog.contents, "Use frames of the same series", "checkbox")
        assert.truthy(option, "the dialog offers the series option for 4 photos")
        assert.is_true(seen.dialog.props.batchEvidence, "on by default")
        assert.are.equal(BatchScan.CAPTION, captions[1], "the bar says what the scan does")
        local requests = world.recorded(record)
        local scans, corrections, firstCorrection, scanAt = {}, {}, nil, nil
        for i, msg in ipairs(requests) do
            if msg.method == "image.scanBatch" then
                scans[#scans + 1], scanAt = msg, i
            elseif msg.method == "image.correct" then
                corrections[#corrections + 1] = msg
                firstCorrection = firstCorrection or i
            end
        end
        assert.are.equal(1, #scans, "one scan for the whole batch")
        assert.is_true(scanAt < firstCorrection, "the scan runs before the first correction")
        assert.are.same(frames, scans[1].params.paths)
        assert.is_false(scans[1].params.tracked)
        assert.are.equal(import("LrPrefs").prefsForPlugin().libraryFolder, scans[1].params.library)
        assert.are.equal(1, #corrections, "one request for the group (issue 16)")
        assert.are.same(frames, corrections[1].params.paths)
        assert.are.equal(summary.batch.batchId, corrections[1].params.batch_id)
        for _, entry in ipairs(summary.corrected) do
            local counts = entry.result.counts
            assert.are.equal(3, counts.batch, "the three defects recur in every frame")
            assert.are.equal(1, counts.residual, "the star that moves is left to single-frame detection")
        end
        local text = seriesText(seen)
        assert.truthy(text, "the summary has a section on the series")
        assert.truthy(text:find("12 hot pixels were repaired because they recur on the same spot in every frame",
            1, true), text)
        assert.truthy(text:find("proposes adding 3 hot pixels to the camera's profile", 1, true), text)
        local caption = sdk.view.bound(seen.summary.contents, "static_text", "title", "page")[1]
        assert.truthy(caption.title.transform(1):find("3 recurring across the series", 1, true),
            "the first photo's page names them")
        assert.are.equal(4, #outputs(frames[1]:match("^(.*)/")))
    end)

    it("a tracked mount is passed to the scan, and both choices are remembered for the next batch", function()
        local record = withFakeWorker("series")
        load()
        world.selectFiles(tripodFrames(3))
        world.answerCorrectDialog({ trackedMount = true })

        local summary = world.runCommand(CorrectDialog)

        assert.are.equal(3, #summary.corrected)
        local scans = world.recorded(record, "image.scanBatch")
        assert.are.equal(1, #scans)
        assert.is_true(scans[1].params.tracked)
        local prefs = import("LrPrefs").prefsForPlugin()
        assert.is_true(prefs.trackedMount)
        assert.is_true(prefs.batchEvidence)
    end)

    it("with the series option off, each photo is corrected on its own: no scan, no batch_id", function()
        local record = withFakeWorker("series")
        load()
        world.selectFiles(tripodFrames(4))
        local seen = world.answerCorrectDialog({ batchEvidence = false })

        local summary = world.runCommand(CorrectDialog)

        assert.are.equal(4, #summary.corrected)
        assert.are.same({}, world.recorded(record, "image.scanBatch"))
        assert.are.equal(1, correctedWithoutBatchId(record), "one request for the group")
        assert.is_nil(seriesText(seen), "nothing to say about a series that was not compared")
        assert.is_false(import("LrPrefs").prefsForPlugin().batchEvidence, "the choice is remembered")
    end)

    it("two photos are too few for a series: no scan, and the dialog does not offer the option", function()
        local record = withFakeWorker("series")
        load()
        world.selectFiles(tripodFrames(2))
        local seen = world.answerCorrectDialog({})

        local summary = world.runCommand(CorrectDialog)

        assert.are.equal(2, #summary.corrected)
        assert.is_nil(sdk.view.withTitle(seen.dialog.contents, "Use frames of the same series"))
        assert.are.same({}, world.recorded(record, "image.scanBatch"))
        correctedWithoutBatchId(record)
    end)

    it("only DNGs with residual detection on are compared: without stage 3 there is nothing to scan", function()
        withFakeWorker("series")
        load()
        local function job(path, stages, isDng)
            return { entry = { path = path, isDng = isDng ~= false }, stages = stages }
        end
        local on = { batchEvidence = true }
        local residual, profileOnly = { "dark", "hot", "residual" }, { "dark", "hot" }
        assert.is_nil(BatchScan.candidates(on, { job("/a.dng", profileOnly), job("/b.dng", profileOnly),
            job("/c.dng", profileOnly) }))
        assert.is_nil(BatchScan.candidates(on, { job("/a.dng", residual), job("/b.dng", residual),
            job("/c.nef", residual, false) }), "a raw converted during the batch cannot be part of the scan")
        local series = BatchScan.candidates(on, { job("/a.dng", residual), job("/b.dng", residual),
            job("/c.nef", residual, false), job("/d.dng", residual) })
        assert.are.equal(3, #series)
        assert.is_nil(BatchScan.candidates({ batchEvidence = false }, series))
    end)

    it("a scan that fails still corrects every photo, and the summary says batch evidence was not used", function()
        local record = withFakeWorker("scan-fails")
        load()
        world.selectFiles(tripodFrames(4))
        local seen = world.answerCorrectDialog({})

        local summary = world.runCommand(CorrectDialog)

        assert.are.equal(4, #summary.corrected)
        assert.are.equal(0, #summary.failed)
        assert.are.equal(1, #world.recorded(record, "image.scanBatch"))
        correctedWithoutBatchId(record)
        local text = seriesText(seen)
        assert.truthy(text and text:find("(batch evidence was not used): the frames do not fit in memory", 1, true),
            text)
        assert.truthy(text:find("Each photo was corrected on its own", 1, true))
        local logged = false
        for _, line in ipairs(sdk.logs()) do
            logged = logged or line:find("^warn the batch scan failed") ~= nil
        end
        assert.is_true(logged, "the failure is in the plug-in's log")
    end)

    it("a worker from before the series scan (-32601) still corrects every photo and the summary explains " ..
        "why frames were not compared", function()
        local record = withFakeWorker("no-scan")
        load()
        world.selectFiles(tripodFrames(3))
        local seen = world.answerCorrectDialog({})

        local summary = world.runCommand(CorrectDialog)

        assert.are.equal(3, #summary.corrected, summary.failed[1] and summary.failed[1].failure)
        assert.are.equal(1, correctedWithoutBatchId(record), "one request for the group, without the scan")
        local text = seriesText(seen)
        assert.truthy(text and text:find("cannot compare frames", 1, true), text)
    end)

    for _, case in ipairs({ { "scan-gone", "1014 batch_expired" }, { "scan-gone-old", "-32602 on batch_id" } }) do
        it("when the worker has forgotten the scan (" .. case[2] .. "), the group is sent again once without it",
            function()
                local record = withFakeWorker(case[1])
                load()
                local frames = tripodFrames(4)
                world.selectFiles(frames)
                local seen = world.answerCorrectDialog({})

                local summary = world.runCommand(CorrectDialog)

                assert.are.equal(4, #summary.corrected, summary.failed[1] and summary.failed[1].failure)
                local sent = {}
                for _, msg in ipairs(world.recorded(record, "image.correct")) do
                    sent[#sent + 1] = { #msg.params.paths, msg.params.batch_id ~= nil }
                end
                assert.are.same({ { 4, true }, { 4, false } }, sent, "one group request, retried once without it")
                local text = seriesText(seen)
                assert.truthy(text:find("no longer had the scan's findings", 1, true), text)
                assert.are.equal(4, #outputs(frames[1]:match("^(.*)/")), "one corrected file per photo")
            end)
    end

    it("cancel during the scan corrects nothing", function()
        local record = withFakeWorker("series")
        load()
        local frames = tripodFrames(4)
        world.selectFiles(frames)
        local batch
        sdk.onProgress(function(scope, what)
            if scope.title == "Correcting hot pixels" then
                batch = scope
            elseif what == "caption" and batch and scope.parent == batch and batch.caption == BatchScan.CAPTION
                and not batch:isCanceled() then
                batch:cancel() -- the user clicks the bar's X while the worker reads the first frame
            end
        end)
        local seen = world.answerCorrectDialog({})

        local summary = world.runCommand(CorrectDialog)

        assert.is_true(summary.cancelled)
        assert.are.equal(0, #summary.corrected)
        assert.are.equal(0, #summary.failed)
        assert.are.equal(4, #summary.notDone)
        local scans = world.recorded(record, "image.scanBatch")
        assert.are.equal(1, #scans)
        local cancels = world.recorded(record, "$/cancelRequest")
        assert.are.equal(1, #cancels)
        assert.are.equal(scans[1].id, cancels[1].params.id, "the scan itself was cancelled in the worker")
        assert.are.same({}, world.recorded(record, "image.correct"))
        assert.are.same({}, outputs(frames[1]:match("^(.*)/")))
        assert.are.same({}, sdk.catalog.added or {})
        assert.truthy(summaryText(seen, "Not done (cancelled): 4"))
        assert.is_nil(seriesText(seen))
    end)
end)
