// swift-tools-version:6.2
import PackageDescription

// The protoc plugins that scripts/generate-grpc.sh runs. Built on a developer's machine only, never in
// CI: the code they generate is committed under Sources/QuiverGRPCAPI/Generated.
let package = Package(
    name: "protoc-plugins",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "2.4.1"),
    ],
    targets: []
)
