// swift-tools-version: 6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "SecureChat",
    platforms: [.macOS(.v14), .iOS(.v17)],
    products: [
        .library(name: "SecureChatKeys", targets: ["SecureChatKeys"]),
        .library(name: "SecureChatProtocol", targets: ["SecureChatProtocol"]),
        .library(name: "SecureChatAPI", targets: ["SecureChatAPI"]),
        .library(name: "SecureChatClient", targets: ["SecureChatClient"]),
        .executable(name: "securechat", targets: ["securechat"]),
        .executable(name: "securechat-vectors", targets: ["securechat-vectors"]),
        .executable(name: "securechat-server", targets: ["securechat-server"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // Public keys, their encodings and signature checks. Holds no secrets; the server links only this.
        .target(
            name: "SecureChatKeys",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings
        ),
        // The secret side: identity and prekey pairs, X3DH, Double Ratchet, Sender Keys, attachments. No I/O.
        .target(
            name: "SecureChatProtocol",
            dependencies: [
                "SecureChatKeys",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // Deterministic test-vector generation and checking, shared by the tool and the tests.
        .target(
            name: "SecureChatVectors",
            dependencies: [
                "SecureChatProtocol",
                "SecureChatKeys",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "securechat-vectors",
            dependencies: [
                "SecureChatVectors",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        // Wire types shared by the server and the client: REST bodies, WebSocket frames, error codes.
        .target(
            name: "SecureChatAPI",
            dependencies: ["SecureChatKeys"],
            swiftSettings: strictSettings
        ),
        // The decoders that read attacker-chosen bytes, with their invariants, for libFuzzer
        // (securechat-fuzz, built by scripts/fuzz) and for the corpus replayed by the tests.
        .target(
            name: "SecureChatFuzzing",
            dependencies: ["SecureChatAPI", "SecureChatKeys", "SecureChatProtocol"],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "securechat-fuzz",
            dependencies: ["SecureChatFuzzing"],
            swiftSettings: strictSettings
        ),
        // The server. It links the public-key side only: it relays and stores ciphertext it cannot read.
        .target(
            name: "SecureChatServer",
            dependencies: [
                "SecureChatAPI",
                "SecureChatKeys",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // What an app or bot embeds: keys, sessions and archive in an encrypted local store, the
        // connection, and events. Everything it sends is encrypted on the device.
        .target(
            name: "SecureChatClient",
            dependencies: [
                "SecureChatProtocol",
                "SecureChatKeys",
                "SecureChatAPI",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSCompression", package: "hummingbird-websocket"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "securechat",
            dependencies: [
                "SecureChatClient",
                "SecureChatAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "securechat-server",
            dependencies: [
                "SecureChatServer",
                "SecureChatAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "ProtocolBenchmarks",
            dependencies: [
                "SecureChatProtocol",
                "SecureChatKeys",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            path: "Benchmarks/ProtocolBenchmarks",
            swiftSettings: strictSettings
        ),
        // Release-mode load generator: drives the real server binary over loopback WebSockets.
        .executableTarget(
            name: "LoadGenerator",
            dependencies: [
                "SecureChatAPI",
                "SecureChatProtocol",
                "SecureChatKeys",
                "SecureChatClient",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                // The metrics scenario times the server's counters and histograms in isolation.
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Benchmarks/LoadGenerator",
            swiftSettings: strictSettings
        ),
        // The SDK in a process of its own, for tests that measure its memory or kill it mid-write.
        .executableTarget(
            name: "ClientProbe",
            dependencies: ["SecureChatClient"],
            path: "Tests/ClientProbe",
            swiftSettings: strictSettings
        ),
        // Seeded randomness, hex and the vectors folder, shared by the test targets.
        .target(name: "SecureChatTestSupport", path: "Tests/SecureChatTestSupport", swiftSettings: strictSettings),
        .testTarget(
            name: "SecureChatKeysTests",
            dependencies: ["SecureChatKeys", "SecureChatTestSupport", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SecureChatProtocolTests",
            dependencies: [
                "SecureChatProtocol",
                "SecureChatKeys",
                "SecureChatTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SecureChatServerTests",
            dependencies: [
                "SecureChatServer",
                "SecureChatAPI",
                "SecureChatKeys",
                // Tests act as real clients, so they make real keys and signatures.
                "SecureChatProtocol",
                "SecureChatTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSCompression", package: "hummingbird-websocket"),
                // Compresses and inflates frames by hand, as a client with permessage-deflate does.
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                // A second connection to the server's SQLite file holds its write lock.
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SecureChatClientTests",
            dependencies: [
                "SecureChatClient",
                "SecureChatAPI",
                "SecureChatProtocol",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SecureChatFuzzingTests",
            dependencies: ["SecureChatFuzzing"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SecureChatVectorsTests",
            dependencies: ["SecureChatVectors", "SecureChatProtocol", "SecureChatTestSupport"],
            swiftSettings: strictSettings
        ),
    ]
)
