#!/usr/bin/env bash
# Vendors the web dashboard's browser assets (xterm.js, noVNC, axe-core) from the npm registry into
# StratusLab.Server/Modules/Web/Assets/vendor/, which the build embeds into the binary. Build time only: nothing
# here runs at run time and the pages load no CDN. Versions are pinned by package-lock.json; node_modules is cached
# in ~/.cache/stratuslab/web-vendor. Writes the versions and licences to scripts/web/VENDORED.md.
# Called by the server's csproj when the vendor folder is missing; run it by hand after changing package.json.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../../StratusLab.Server/Modules/Web/Assets/vendor"
cache="${STRATUSLAB_CACHE:-$HOME/.cache/stratuslab}/web-vendor"
command -v npm >/dev/null || { echo "vendor.sh: npm is missing; run scripts/install-deps.sh (Debian package npm)" >&2; exit 1; }
mkdir -p "$cache"
if ! cmp -s "$here/package-lock.json" "$cache/package-lock.json" || [[ ! -d "$cache/node_modules" ]]; then
  cp "$here/package.json" "$here/package-lock.json" "$cache/"
  (cd "$cache" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2)
fi
m="$cache/node_modules"
rm -rf "$out.tmp" && mkdir -p "$out.tmp/xterm" "$out.tmp/novnc" "$out.tmp/axe"
cp "$m/@xterm/xterm/lib/xterm.js" "$m/@xterm/xterm/css/xterm.css" "$m/@xterm/xterm/LICENSE" "$out.tmp/xterm/"
cp "$m/@xterm/addon-fit/lib/addon-fit.js" "$out.tmp/xterm/"
cp -r "$m/@novnc/novnc/core" "$m/@novnc/novnc/vendor" "$m/@novnc/novnc/LICENSE.txt" "$out.tmp/novnc/"
cp "$m/axe-core/axe.min.js" "$m/axe-core/LICENSE" "$out.tmp/axe/"
rm -rf "$out" && mv "$out.tmp" "$out"
{
  echo "# Vendored browser assets of the web dashboard"
  echo
  echo "Fetched from the npm registry at build time by scripts/web/vendor.sh (pinned by package-lock.json), embedded in the binary."
  echo
  echo "| package | version | licence |"
  echo "|---|---|---|"
  for p in @xterm/xterm @xterm/addon-fit @novnc/novnc axe-core; do
    node -e 'const j=require(process.argv[1]);console.log(`| ${j.name} | ${j.version} | ${typeof j.license==="string"?j.license:JSON.stringify(j.license)} |`)' "$m/$p/package.json"
  done
} > "$here/VENDORED.md"
echo "vendor.sh: browser assets in $out" >&2
