// swift-tools-version:6.2
import PackageDescription

// Layers (DESIGN.md §2). Lower targets never import higher ones, and nothing below the edge
// layer (RESTServer, QuiverGRPCAPI, PeerTransport, QuiverServer, quiver) imports NIO, Hummingbird or a gRPC transport.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "quiver",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "quiver", targets: ["quiver"]),
        .executable(name: "quiver-bench", targets: ["quiver-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    ],
    targets: [
        // L0 basics
        .target(name: "CVectorKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "CChecksum", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "QuiverModel", dependencies: ["QuiverJSON", "CTextSegmentation", "CStemmer"], swiftSettings: strict),
        // ICU's word breaking (Debian libicu-dev), for the multilingual tokenizer.
        .target(name: "CTextSegmentation", linkerSettings: [.linkedLibrary("icuuc")]),
        // Snowball's stemmers (Debian libstemmer-dev), for text indexes and BM25.
        .target(name: "CStemmer", linkerSettings: [.linkedLibrary("stemmer")]),
        .target(name: "QuiverJSON", swiftSettings: strict),
        // zlib (Debian zlib1g-dev), for gzip- and deflate-compressed gRPC messages.
        .target(name: "CZlib", linkerSettings: [.linkedLibrary("z")]),
        .target(name: "DiskIO", dependencies: ["CFileSystem"], swiftSettings: strict),
        // Linux file-system calls Swift's Glibc module does not export (renameat2).
        .target(name: "CFileSystem"),
        // L1 index
        .target(
            name: "VectorIndex", dependencies: ["CVectorKernels", "CChecksum", "DiskIO"],
            // Optimised in debug builds too: the tests and the debug server build graphs.
            swiftSettings: strict + [.unsafeFlags(["-Ounchecked"], .when(configuration: .release)),
                                     .unsafeFlags(["-O"], .when(configuration: .debug))]
        ),
        .target(name: "WAL", dependencies: ["DiskIO", "CChecksum"], swiftSettings: strict),
        // L2 shard
        .target(
            name: "Shard",
            dependencies: ["QuiverModel", "QuiverJSON", "DiskIO", "WAL", "CVectorKernels", "VectorIndex"],
            swiftSettings: strict
        ),
        // L3 cluster / storage
        // libraft and libuv (Debian libraft-dev, libuv1-dev, liblz4-dev), wrapped in a small C bridge that
        // owns the loop thread (DESIGN.md §3).
        .target(
            name: "CRaftBridge",
            cSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("raft"), .linkedLibrary("uv"), .linkedLibrary("lz4")]
        ),
        .target(name: "Consensus", dependencies: ["CRaftBridge", "CChecksum", "DiskIO"], swiftSettings: strict),
        .target(
            name: "Storage",
            dependencies: ["QuiverModel", "QuiverJSON", "DiskIO", "Shard", "VectorIndex", "CVectorKernels", "Consensus", .product(name: "Logging", package: "swift-log"),
                           .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // L4 service
        .target(
            name: "QuiverService",
            dependencies: ["QuiverModel", "QuiverJSON", "Storage", "Shard", "VectorIndex", .product(name: "Logging", package: "swift-log"),
                           .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // L5 edges
        // The node's certificate files (tls.*), read again after tls.cert_ttl; TLS of every listener.
        .target(
            name: "QuiverTLS",
            dependencies: [
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCertificateReloading", package: "swift-nio-extras"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "RESTServer",
            dependencies: [
                "QuiverService", "QuiverModel", "QuiverJSON", "Storage", "Shard",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "PeerTransport",
            dependencies: [
                "Consensus", "Storage", "Shard", "QuiverModel", "QuiverJSON", "QuiverTLS", "QuiverService",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Qdrant's public gRPC API (qdrant.* on 6334); Generated/ comes from Protos/ by scripts/generate-grpc.sh.
        .target(
            name: "QuiverGRPCAPI",
            dependencies: [
                "QuiverService", "QuiverModel", "QuiverJSON", "Storage", "Shard", "CZlib",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "QuiverServer",
            dependencies: [
                "RESTServer", "PeerTransport", "QuiverGRPCAPI", "Consensus", "QuiverModel", "QuiverService", "Storage", "DiskIO", "QuiverJSON",
                "QuiverTLS", "CFileSystem", .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "quiver-bench",
            dependencies: ["VectorIndex", "CVectorKernels", "QuiverJSON", "QuiverModel", "QuiverService", "Storage", "DiskIO", "QuiverGRPCAPI",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOHPACK", package: "swift-nio-http2")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "quiver",
            dependencies: [
                "QuiverServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // Test support: fakes and fault injection for the layers' own tests (DESIGN.md §2).
        .target(name: "QuiverTesting", dependencies: ["DiskIO", "Consensus"], swiftSettings: strict),
        // Tests: one target per library target.
        .testTarget(name: "CVectorKernelsTests", dependencies: ["CVectorKernels"]),
        .testTarget(name: "VectorIndexTests", dependencies: ["VectorIndex", "CVectorKernels"]),
        .testTarget(name: "CChecksumTests", dependencies: ["CChecksum"]),
        .testTarget(name: "QuiverModelTests", dependencies: ["QuiverModel", "QuiverJSON"]),
        .testTarget(name: "QuiverJSONTests", dependencies: ["QuiverJSON"]),
        .testTarget(name: "DiskIOTests", dependencies: ["DiskIO"]),
        .testTarget(name: "WALTests", dependencies: ["WAL", "DiskIO", "QuiverTesting"]),
        .testTarget(name: "ShardTests", dependencies: ["Shard", "QuiverModel", "QuiverJSON", "DiskIO", "QuiverTesting", "VectorIndex"]),
        .testTarget(name: "CRaftBridgeTests", dependencies: ["CRaftBridge"]),
        .testTarget(name: "CTextSegmentationTests", dependencies: ["CTextSegmentation"]),
        .testTarget(name: "ConsensusTests", dependencies: ["Consensus", "QuiverTesting"]),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "Shard", "DiskIO", "QuiverModel", "QuiverJSON", "QuiverTesting", "Consensus", "VectorIndex", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "QuiverServiceTests", dependencies: ["QuiverService", "Storage", "DiskIO", "QuiverModel", "QuiverJSON", .product(name: "Logging", package: "swift-log"),
                                                               .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(
            name: "RESTServerTests",
            dependencies: [
                "RESTServer", "QuiverService", "Storage", "DiskIO",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "PeerTransportTests",
            dependencies: [
                "PeerTransport", "Consensus", "Storage", "QuiverModel", "QuiverJSON", "DiskIO",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "QuiverGRPCAPITests",
            dependencies: [
                "QuiverGRPCAPI", "QuiverService", "QuiverModel", "QuiverJSON", "Storage", "DiskIO",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .testTarget(name: "QuiverServerTests", dependencies: ["QuiverServer", "QuiverTLS", .product(name: "Logging", package: "swift-log")]),
    ],
    swiftLanguageModes: [.v6]
)
