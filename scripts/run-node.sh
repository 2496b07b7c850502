#!/usr/bin/env bash
# Builds Quiver (release) and starts a single node serving on 6333 from ./storage.
# Arguments are passed to the binary, e.g. --config-path my.yaml; environment variables such as
# QDRANT__SERVICE__HTTP_PORT=7333 override the configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
require_swift
# System packages the build needs beyond the Swift toolchain.
ensure_debian_packages git pkg-config libraft-dev libuv1-dev liblz4-dev libicu-dev libstemmer-dev zlib1g-dev
swift build -c release --product quiver
export QUIVER_COMMIT="${QUIVER_COMMIT:-$(quiver_commit)}"
exec .build/release/quiver "$@"
