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
        .executable(name: "securechat-vectors", targets: ["securechat-vectors"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
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
        // Seeded randomness, hex and the vectors folder, shared by the test targets.
        .target(name: "SecureChatTestSupport", path: "Tests/SecureChatTestSupport", swiftSettings: strictSettings),
        // Decoder fuzzing: libFuzzer with scripts/fuzz, corpus replay in a normal build.
        .executableTarget(
            name: "DecoderFuzzer",
            dependencies: ["SecureChatProtocol", "SecureChatKeys"],
            path: "Fuzz/DecoderFuzzer",
            swiftSettings: strictSettings
        ),
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
            name: "SecureChatVectorsTests",
            dependencies: ["SecureChatVectors", "SecureChatProtocol", "SecureChatTestSupport"],
            swiftSettings: strictSettings
        ),
    ]
)
