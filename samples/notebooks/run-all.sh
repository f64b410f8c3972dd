#!/usr/bin/env bash
# Runs every notebook of this folder headless with dotnet-repl and writes the executed copies to out/.
# Usage: samples/notebooks/run-all.sh [notebook.ipynb ...]
# MCDIT_NOTEBOOK_SCALE picks the size of the runs: "ci" (the default here: toy settings, seconds per notebook) or
# "default" (the settings a person would use on a laptop CPU, minutes per notebook).
# Prints one line "notebook: passed|failed (N s)" per notebook and exits non-zero when any fails.
#
# The notebooks reference McDit as users do, `#r "nuget: McDit.MLNet, <version>"`, from the local feed
# artifacts/packages. This script packs McDit.Torch and McDit.MLNet into it first (MCDIT_NOTEBOOK_SKIP_PACK=1 uses
# the packages already there, as .ci/run does after packing everything), then runs the notebooks in a sandbox so that
# they get exactly those packages: its own HOME (dotnet-interactive caches package resolutions per user, by package
# and version, not by content) and its own NuGet packages folder, MCDIT_NOTEBOOK_PACKAGES (default
# artifacts/notebooks/packages, kept between runs; its McDit packages are removed before each run, since NuGet never
# replaces a version it already has). Your own HOME and NuGet cache are not touched.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export MCDIT_NOTEBOOK_SCALE="${MCDIT_NOTEBOOK_SCALE:-ci}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
feed="$root/artifacts/packages"
work="$root/artifacts/notebooks"

cd "$root"
version="$(dotnet msbuild src/McDit.MLNet/McDit.MLNet.csproj -getProperty:Version -nologo 2>/dev/null | tr -d '[:space:]')"
if [ -z "$version" ]; then echo "notebooks: could not read the package version"; exit 1; fi
if [ "${MCDIT_NOTEBOOK_SKIP_PACK:-0}" != 1 ]; then
  for project in src/McDit.Torch/McDit.Torch.csproj src/McDit.MLNet/McDit.MLNet.csproj; do
    if ! dotnet pack "$project" -c Release -o "$feed" -nologo -v q; then
      echo "notebooks: packing $project failed"
      exit 1
    fi
  done
fi
if [ ! -f "$feed/McDit.MLNet.$version.nupkg" ]; then echo "notebooks: $feed has no McDit.MLNet $version package"; exit 1; fi

# The sandbox: a fresh HOME outside the repository (dotnet-interactive restores in projects below HOME, which must not
# pick up this repository's Directory.*.props), with the user's NuGet sources; a NuGet folder without stale McDit packages.
packages="${MCDIT_NOTEBOOK_PACKAGES:-$work/packages}"
mkdir -p "$packages"
rm -rf "$packages"/mcdit.torch "$packages"/mcdit.mlnet
sandbox="$(mktemp -d)"
trap 'rm -rf "$sandbox"' EXIT
mkdir -p "$sandbox/.nuget/NuGet"
[ -f "$HOME/.nuget/NuGet/NuGet.Config" ] && cp "$HOME/.nuget/NuGet/NuGet.Config" "$sandbox/.nuget/NuGet/"
export HOME="$sandbox" NUGET_PACKAGES="$packages"
dotnet tool restore >/dev/null || { echo "notebooks: dotnet tool restore (dotnet-repl) failed"; exit 1; }

cd "$here"
mkdir -p out
if [ "$#" -gt 0 ]; then notebooks=("$@"); else notebooks=([0-9][0-9]-*.ipynb); fi
failed=0
for nb in "${notebooks[@]}"; do
  name="$(basename "$nb" .ipynb)"
  start=$SECONDS
  # The reference cell must name the version this repository packs.
  if ! grep -qF "#r \\\"nuget: McDit.MLNet, $version\\\"" "$nb"; then
    echo "$name: failed (its #r \"nuget: McDit.MLNet, ...\" does not name version $version, the one Directory.Build.props packs)"
    failed=$((failed + 1))
    continue
  fi
  # dotnet-repl exits 2 when a cell fails; the executed copy (with outputs and errors) goes to out/.
  dotnet tool run dotnet-repl --run "$nb" --exit-after-run --output-path "out/$name.ipynb" > "out/$name.log" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "$name: passed ($((SECONDS - start)) s)"
  else
    echo "$name: failed (exit $rc, $((SECONDS - start)) s); see samples/notebooks/out/$name.ipynb and out/$name.log"
    failed=$((failed + 1))
  fi
done
[ "$failed" -eq 0 ]
