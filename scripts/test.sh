#!/usr/bin/env bash
# Runs the whole test suite: Swift unit tests of every target, then the integration tests that
# drive the real binary with the official qdrant-client from PyPI. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
require_swift
ensure_debian_packages git pkg-config python3 libraft-dev libuv1-dev liblz4-dev libicu-dev libstemmer-dev zlib1g-dev
# The partition test cuts a peer off inside network namespaces of its own.
ensure_debian_packages iproute2 iptables
python3 -m venv --help >/dev/null 2>&1 || ensure_debian_packages python3-venv

echo "== build (debug, with tests)"
swift build --build-tests

echo "== Swift unit tests"
# One test at a time: the graph and quantization tests compute synchronously, and run side by
# side they hold every thread of Swift's cooperative pool on a 2-core machine for half a minute,
# so timing-sensitive tests (RPC and consensus timeouts) failed around them.
swift test --skip-build --no-parallel

# The integration tests drive the binary users run: a release build (Swift's optimizer once
# miscompiled code that passed every debug test).
echo "== build (release binary)"
swift build -c release --product quiver

echo "== integration tests (real binary + qdrant-client)"
if [ ! -x .venv-test/bin/python ]; then
    python3 -m venv .venv-test
fi
.venv-test/bin/python -m pip install -q --disable-pip-version-check -r tests/requirements.txt
export SWIFT_BACKTRACE=enable=no
QUIVER_BINARY="$PWD/.build/release/quiver" .venv-test/bin/python -m pytest tests/integration -q -p no:cacheprovider
