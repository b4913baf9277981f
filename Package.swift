// swift-tools-version: 6.1
import PackageDescription

// Linux only (README, Requirements): the library calls Glibc directly (unnamed POSIX semaphores,
// `sem_timedwait`, `/proc`, `mount` in the tests), so no Apple platform is declared.
let package = Package(
    name: "swift-checkpoint",
    products: [
        .library(name: "Checkpoint", targets: ["Checkpoint"]),
        .executable(name: "ckpt", targets: ["CheckpointTool"]),
        .executable(name: "quickstart", targets: ["Quickstart"]),
        .executable(name: "checkpoint-bench", targets: ["CheckpointBench"]),
        .executable(name: "heat", targets: ["Heat"]),
        .executable(name: "nbody", targets: ["NBody"]),
        .library(name: "CheckpointMPI", targets: ["CheckpointMPI"]),
        .library(name: "CheckpointService", targets: ["CheckpointService"]),
        .executable(name: "kv-service", targets: ["KVService"]),
        .executable(name: "mpi-selftest", targets: ["MPISelfTest"]),
        .executable(name: "checkpoint-fuzz", targets: ["CheckpointFuzz"]),
        .executable(name: "torture", targets: ["Torture"]),
    ],
    traits: [
        .trait(
            name: "MPI",
            description: "Build CheckpointMPI on the system's MPI (Open MPI or MPICH; pkg-config 'mpi')."
        )
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        .systemLibrary(
            name: "CXXHash",
            pkgConfig: "libxxhash",
            providers: [.apt(["libxxhash-dev"])]
        ),
        .systemLibrary(
            name: "CMPI",
            pkgConfig: "mpi",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]
        ),
        .target(
            name: "CheckpointMPI",
            dependencies: ["Checkpoint", .target(name: "CMPI", condition: .when(traits: ["MPI"]))]
        ),
        .executableTarget(
            name: "MPISelfTest",
            dependencies: ["Checkpoint", "CheckpointMPI"],
            path: "Tests/MPISelfTest"
        ),
        .executableTarget(
            name: "CheckpointFuzz",
            dependencies: ["Checkpoint"],
            path: "Tests/Fuzz",
            exclude: ["Corpus"]
        ),
        .executableTarget(
            name: "Torture",
            dependencies: [
                "Checkpoint",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/Torture"
        ),
        .target(
            name: "HeatKernel",
            dependencies: ["Checkpoint", .product(name: "Logging", package: "swift-log")],
            path: "Examples/HeatKernel"
        ),
        .executableTarget(
            name: "Heat",
            dependencies: [
                "Checkpoint", "CheckpointMPI", "HeatKernel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/Heat"
        ),
        .target(
            name: "Checkpoint",
            dependencies: [
                "CZstd",
                "CXXHash",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "CheckpointService",
            dependencies: [
                "Checkpoint",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "KVService",
            dependencies: [
                "Checkpoint", "CheckpointService",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/KVService"
        ),
        .executableTarget(
            name: "CheckpointTool",
            dependencies: [
                "Checkpoint",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "NBody",
            dependencies: [
                "Checkpoint",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/NBody"
        ),
        .executableTarget(
            name: "Quickstart",
            dependencies: ["Checkpoint"],
            path: "Examples/Quickstart"
        ),
        .executableTarget(
            name: "CheckpointBench",
            dependencies: [
                "Checkpoint", "CheckpointMPI", "CZstd", "HeatKernel", .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Benchmarks/CheckpointBench"
        ),
        .testTarget(
            name: "CheckpointTests",
            dependencies: [
                "Checkpoint", .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]
        ),
        .testTarget(
            name: "ServiceTests",
            dependencies: [
                "Checkpoint", "CheckpointService",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "CheckpointToolTests",
            dependencies: ["Checkpoint"]
        ),
    ]
)
