#!/usr/bin/env bash
# Regenerates Sources/QuiverGRPCAPI/Generated from Protos/. Run by hand after changing a .proto file and
# commit the result: CI and users never build the protoc plugins.
#
# Needs protoc (Debian: protobuf-compiler). The plugins (swift-protobuf's protoc-gen-swift and
# grpc-swift-protobuf's protoc-gen-grpc-swift-2) are built from tools/protoc-plugins.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v protoc >/dev/null || { echo "protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
plugins="$root/tools/protoc-plugins"
swift build -c release --package-path "$plugins" --product protoc-gen-swift
swift build -c release --package-path "$plugins" --product protoc-gen-grpc-swift-2
bin="$(swift build -c release --package-path "$plugins" --show-bin-path)"
out="$root/Sources/QuiverGRPCAPI/Generated"
rm -rf "$out" && mkdir -p "$out"
cd "$root/Protos"
protos=$(find . -name '*.proto' | sed 's|^\./||' | sort)
protoc -I. \
    --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
    --plugin=protoc-gen-grpc-swift="$bin/protoc-gen-grpc-swift-2" \
    --swift_out="$out" --swift_opt=Visibility=Package,FileNaming=PathToUnderscores \
    --grpc-swift_out="$out" --grpc-swift_opt=Visibility=Package,FileNaming=PathToUnderscores,Client=true,Server=true \
    $protos
# protoc-gen-grpc-swift writes a file for every .proto, with only a comment where there is no service.
grep -l "This file contained no services" "$out"/*.grpc.swift | xargs -r rm
ls "$out"
