@echo off
rem HotPixels: set up and run (Windows). Mirrors run.sh:
rem   run.bat            set up, then the demo
rem   run.bat test       set up (with test tools), then the Python tests (and Lua tests when busted is on PATH)
rem   run.bat serve      the worker on stdio
rem   run.bat build      the frozen worker into hotpixel.lrdevplugin\bin\windows-<arch>\
rem   run.bat bench      benchmarks
rem   run.bat ARGS...    anything else goes to the hotpixels CLI
setlocal EnableExtensions EnableDelayedExpansion

set "ROOT=%~dp0"
if "%ROOT:~-1%"=="\" set "ROOT=%ROOT:~0,-1%"
set "VENV=%ROOT%\.venv"
set "STAMP=%VENV%\.hotpixels-stamp"
set "TORCH_VERSION=2.13.0"

set "CMD=%~1"
if "%CMD%"=="" set "CMD=demo"
if not "%~1"=="" shift
set "ARGS="
:collect
if "%~1"=="" goto collected
set ARGS=!ARGS! "%~1"
shift
goto collect
:collected

where exiftool >nul 2>nul
if errorlevel 1 (
  echo run.bat: exiftool is required. Install it from https://exiftool.org ^(rename exiftool^(-k^).exe to exiftool.exe^) and put it on PATH. 1>&2
  exit /b 1
)

set "EXTRAS="
if /i "%CMD%"=="test" set "EXTRAS=dev"
if /i "%CMD%"=="bench" set "EXTRAS=dev"
if /i "%CMD%"=="build" set "EXTRAS=build"
call :ensure_venv || exit /b 1

if /i "%CMD%"=="demo"  ( "%VENV%\Scripts\hotpixels.exe" demo %ARGS% & exit /b !errorlevel! )
if /i "%CMD%"=="serve" ( "%VENV%\Scripts\hotpixels-worker.exe" --stdio %ARGS% & exit /b !errorlevel! )
if /i "%CMD%"=="build" ( "%VENV%\Scripts\python.exe" "%ROOT%\build\build_worker.py" %ARGS% && "%VENV%\Scripts\python.exe" "%ROOT%\build\release.py" & exit /b !errorlevel! )
if /i "%CMD%"=="bench" ( "%VENV%\Scripts\python.exe" -m hotpixels.bench %ARGS% & exit /b !errorlevel! )
if /i "%CMD%"=="test"  goto run_tests
"%VENV%\Scripts\hotpixels.exe" %CMD% %ARGS%
exit /b %errorlevel%

:run_tests
pushd "%ROOT%"
"%VENV%\Scripts\python.exe" -m pytest -q %ARGS% tests\python
set "RC=%errorlevel%"
where busted >nul 2>nul
if errorlevel 1 (
  echo run.bat: busted not found: Lua tests skipped ^(install Lua 5.1, luarocks, busted, luasocket, lua-cjson^) 1>&2
) else (
  set "HOTPIXELS_ROOT=%ROOT%"
  set "HOTPIXELS_PYTHON_BIN=%VENV%\Scripts"
  busted --lua=lua5.1 tests\lua || set "RC=1"
)
popd
exit /b %RC%

:ensure_venv
if not exist "%VENV%\Scripts\python.exe" (
  py -3.11 -c "import sys" >nul 2>nul
  if errorlevel 1 (
    echo run.bat: Python 3.11 is required ^(the one version the worker, its frozen build and the pinned torch 2.13.0 are tested with^). Install it from python.org or "winget install Python.Python.3.11". 1>&2
    exit /b 1
  )
  echo run.bat: creating .venv 1>&2
  py -3.11 -m venv "%VENV%" || exit /b 1
)
for /f "usebackq delims=" %%H in (`powershell -NoProfile -Command "(Get-FileHash -Algorithm SHA256 '%ROOT%\pyproject.toml').Hash.ToLower()"`) do set "WANT=%%H"
set "HAVE_LINE=0"
if exist "%STAMP%" findstr /b /c:"%WANT% %EXTRAS%" "%STAMP%" >nul 2>nul && set "HAVE_LINE=1"
if "%EXTRAS%"=="" if exist "%STAMP%" findstr /b /c:"%WANT% " "%STAMP%" >nul 2>nul && set "HAVE_LINE=1"
if "%HAVE_LINE%"=="1" goto venv_ready
echo run.bat: installing Python dependencies %EXTRAS% 1>&2
set "TORCH_ARGS=torch==%TORCH_VERSION% --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple"
where nvidia-smi >nul 2>nul && nvidia-smi -L >nul 2>nul && set "TORCH_ARGS=torch==%TORCH_VERSION% --index-url https://download.pytorch.org/whl/cu128 --extra-index-url https://pypi.org/simple"
"%VENV%\Scripts\python.exe" -m pip install --quiet %TORCH_ARGS% || exit /b 1
set "SPEC=%ROOT%"
if not "%EXTRAS%"=="" set "SPEC=%ROOT%[%EXTRAS%]"
"%VENV%\Scripts\python.exe" -m pip install --quiet -e "%SPEC%" || exit /b 1
>>"%STAMP%" echo %WANT% %EXTRAS%
:venv_ready
>"%ROOT%\hotpixel.lrdevplugin\PluginPath.txt" echo %ROOT%
exit /b 0
