#!/usr/bin/env bash
# Builds the stratuslab binary and prints its path.
#   scripts/build.sh             framework-dependent Release build into .artifacts/bin (needs the .NET runtime; fast)
#   scripts/build.sh --release   one self-contained linux-x64 file, .artifacts/release/stratuslab: runs on a Debian box
#                                without .NET (serve, the client, the admin commands). SQLite's native library is inside
#                                (extracted to $DOTNET_BUNDLE_EXTRACT_BASE_DIR, default ~/.net, on first start).
# No trimming: Dapper, System.Text.Json's reflection serializer, the minimal-API handlers, Quartz and OpenTelemetry all
# find types and members by reflection, which trimming would silently remove. ReadyToRun is off by default
# (STRATUSLAB_R2R=1: on): the bundled .NET runtime is precompiled already, so it would only precompile our own code and
# the NuGet packages, at the cost of a much longer publish (crossgen) and a larger file; it changes no behaviour.
set -euo pipefail
cd "$(dirname "$0")/.."
quiet=(--nologo -v quiet -clp:NoSummary)
if [[ "${1:-}" == "--release" ]]; then
  staging=.artifacts/release-staging
  rm -rf "$staging"
  dotnet publish StratusLab.Server/StratusLab.Server.csproj -c Release -r linux-x64 --self-contained \
    -p:PublishSingleFile=true -p:IncludeNativeLibrariesForSelfExtract=true \
    -p:PublishReadyToRun="$([[ "${STRATUSLAB_R2R:-0}" == 1 ]] && echo true || echo false)" \
    -p:DebugType=none -p:GenerateDocumentationFile=false \
    -o "$staging" "${quiet[@]}" >&2
  mkdir -p .artifacts/release
  # Only the one file travels; the publish's side files (static web asset manifest) are not needed at run time.
  install -m 0755 "$staging/stratuslab" .artifacts/release/stratuslab
  rm -rf "$staging"
  echo "$PWD/.artifacts/release/stratuslab"
else
  dotnet publish StratusLab.Server/StratusLab.Server.csproj -c Release -o .artifacts/bin "${quiet[@]}" >&2
  echo "$PWD/.artifacts/bin/stratuslab"
fi
