#!/usr/bin/env bash
# Builds the stratuslab binary (Release) into .artifacts/bin.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet publish StratusLab.Server/StratusLab.Server.csproj -c Release -o .artifacts/bin --nologo -v quiet >&2
echo "$PWD/.artifacts/bin/stratuslab"
