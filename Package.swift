// swift-tools-version:6.0
// Vouch: the gateway agent (`vouch`) and the bank's verifying receiver (`vouch-bank`).
// Layering and the one-way import rule are described in README.md and checked by scripts/check-imports.
import PackageDescription

let package = Package(
    name: "Vouch",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "vouch", targets: ["vouch"]),
        .executable(name: "vouch-bank", targets: ["vouch-bank"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.29.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.25.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.10.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
    ],
    targets: [
        // C libraries, wrapped in exactly one Swift module each (VouchModbus, VouchGPIO).
        .systemLibrary(
            name: "CModbus", path: "Sources/CModbus", pkgConfig: "libmodbus",
            providers: [.apt(["libmodbus-dev"])]),
        .systemLibrary(
            name: "CGPIOD", path: "Sources/CGPIOD", pkgConfig: "libgpiod",
            providers: [.apt(["libgpiod-dev"])]),

        // Kernel calls Swift's Glibc module does not expose (adjtimex), for VouchCore's clock only.
        .target(name: "CVouchSys", path: "Sources/CVouchSys"),

        // The bank contract: the only code the gateway and the bank share.
        .target(name: "VouchEvidence", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),

        // Gateway side.
        .target(name: "VouchCore", dependencies: ["VouchEvidence", "CVouchSys"]),
        .target(
            name: "VouchModbus",
            dependencies: ["VouchCore", "CModbus", .product(name: "Logging", package: "swift-log")]),
        .target(name: "VouchGPIO", dependencies: ["VouchCore", "CGPIOD", .product(name: "Logging", package: "swift-log")]),
        .target(name: "VouchDetect", dependencies: ["VouchCore"]),
        .target(
            name: "VouchStore",
            dependencies: ["VouchCore", "VouchEvidence", .product(name: "GRDB", package: "GRDB.swift")]),
        .target(
            name: "VouchUplink",
            dependencies: [
                "VouchCore", "VouchEvidence", "VouchStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .target(
            name: "VouchAgent",
            dependencies: [
                "VouchCore", "VouchEvidence", "VouchModbus", "VouchGPIO", "VouchDetect", "VouchStore", "VouchUplink",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .executableTarget(
            name: "vouch",
            dependencies: [
                "VouchAgent", "VouchCore", "VouchDetect", "VouchEvidence", "VouchGPIO", "VouchModbus", "VouchStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // Bank side.
        .target(
            name: "VouchBank",
            dependencies: [
                "VouchEvidence",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The API's OpenAPI document, served at /openapi.yaml from the binary itself.
            resources: [.embedInCode("openapi.yaml")]),
        // The bank's PostgreSQL store: several receivers on one database (scale-out).
        .target(
            name: "VouchBankPostgres",
            dependencies: [
                "VouchBank", "VouchEvidence",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .executableTarget(
            name: "vouch-bank",
            dependencies: [
                "VouchBank", "VouchBankPostgres", "VouchEvidence",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),

        // Size benchmark input (scripts/bench-evidence-size); not shipped.
        .executableTarget(name: "vouch-bench", dependencies: ["VouchEvidence"]),
        // The real-kernel GPIO checks run inside the gpio-sim VM (scripts/gpio-vm-test); not shipped.
        .executableTarget(name: "vouch-gpio-vmtest", dependencies: ["VouchCore", "VouchEvidence", "VouchGPIO"]),
        // Modbus poll-throughput benchmark's Swift side (scripts/bench-modbus); not shipped.
        .executableTarget(
            name: "vouch-bench-modbus",
            dependencies: ["VouchCore", "VouchModbus", .product(name: "Logging", package: "swift-log")]),
        // Detector throughput and state size (scripts/bench-detect); not shipped.
        .executableTarget(name: "vouch-bench-detect", dependencies: ["VouchCore", "VouchDetect"]),
        .executableTarget(
            name: "vouch-bench-bank",
            dependencies: [
                "VouchBank", "VouchEvidence",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]),

        // Tests mirror sources.
        .testTarget(name: "VouchEvidenceTests", dependencies: ["VouchEvidence"]),
        // ConfigErrorTable: broken configs with their exact diagnostics, read by ConfigErrorTableTests at run time.
        .testTarget(name: "VouchCoreTests", dependencies: ["VouchCore"], exclude: ["ConfigErrorTable"]),
        .testTarget(
            name: "VouchModbusTests",
            dependencies: ["VouchModbus", "VouchCore", .product(name: "Logging", package: "swift-log")],
            exclude: ["planner-cases"]),
        .testTarget(name: "VouchGPIOTests", dependencies: ["VouchGPIO", "VouchCore", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "VouchDetectTests", dependencies: ["VouchDetect", "VouchCore"]),
        .testTarget(name: "VouchStoreTests", dependencies: ["VouchStore", "VouchCore", "VouchEvidence"]),
        .testTarget(
            name: "VouchUplinkTests",
            dependencies: [
                "VouchUplink", "VouchStore", "VouchCore", "VouchEvidence", "VouchBank",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]),
        .testTarget(
            name: "VouchAgentTests",
            dependencies: [
                "VouchAgent", "VouchCore", "VouchEvidence", "VouchModbus", "VouchStore", "VouchUplink", .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "VouchBankTests",
            dependencies: [
                "VouchBank", "VouchBankPostgres", "VouchEvidence",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]),
    ]
)
