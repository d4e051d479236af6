#!/usr/bin/env bash
# Refresh the vendored lightweight-charts build from the npm registry (the charts open offline, so it is inlined).
#   scripts/vendor-lightweight-charts.sh 5.2.1
set -euo pipefail
VERSION="${1:?usage: $0 VERSION}"
DEST="$(cd "$(dirname "$0")/.." && pwd)/mdstream/ops/web/vendor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "lightweight-charts@$VERSION" >/dev/null && tar xzf "lightweight-charts-$VERSION.tgz")
cp "$WORK/package/dist/lightweight-charts.standalone.production.js" "$DEST/"
cp "$WORK/package/LICENSE" "$DEST/LICENSE"
if [[ -f "$WORK/package/NOTICE" ]]; then cp "$WORK/package/NOTICE" "$DEST/NOTICE.upstream"; fi
sed -i "s/lightweight-charts [0-9][0-9.]*,/lightweight-charts $VERSION,/" "$DEST/NOTICE"
echo "vendored lightweight-charts $VERSION into $DEST (update LWC_VERSION in mdstream/ops/page.py)"
