// swift-tools-version:6.0
import PackageDescription

// Ingot: LLM checkpoints -> deployable quantized artifacts.
// One target per pipeline stage; dependencies flow downward only:
//   IngotCore <- IngotFormats <- IngotModel <- IngotForward <- IngotCalibration <- IngotQuant
//   IngotForward <- IngotVerify;  IngotQuant, IngotVerify <- IngotPipeline <- IngotCLI <- ingot
// The numeric stages (forward, calibration, quantization) are compiled optimized in debug builds too: the test suite
// runs real forward passes and AWQ searches, which are 20-50× slower unoptimized. Release builds are unaffected.
// Only targets outside the library products get the flag: SwiftPM refuses unsafe flags in a package used as a
// dependency, and IngotCore/IngotFormats are published for that.
let optimizedInDebug: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]
// The library products (IngotCore, IngotFormats) carry no unsafe flags by default, so other packages can depend on
// them; INGOT_OPTIMIZE_DEBUG=1 compiles them optimized in debug too (e.g. `INGOT_OPTIMIZE_DEBUG=1 swift test`).
let productOptimizedInDebug: [SwiftSetting] = Context.environment["INGOT_OPTIMIZE_DEBUG"] == "1" ? optimizedInDebug : []

let package = Package(
    name: "Ingot",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ingot", targets: ["ingot"]),
        .library(name: "IngotCore", targets: ["IngotCore"]),
        .library(name: "IngotFormats", targets: ["IngotFormats"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // C libraries from Debian's -dev packages.
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CMalloc"),
        // Ingot's own SIMD kernels (AVX2 + FMA chosen at run time, portable bodies otherwise), optimized in debug too.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        // The .ingot chunk codec's inner loops (byte planes, Huffman); no flags, as IngotFormats is a library product.
        .target(name: "CCodec"),

        .target(name: "IngotCore", dependencies: ["CMalloc"], swiftSettings: productOptimizedInDebug),
        .target(name: "IngotFormats", dependencies: ["IngotCore", "CZstd", "CHDF5", "CCodec"], swiftSettings: productOptimizedInDebug),
        .target(name: "IngotModel", dependencies: ["IngotCore", "IngotFormats"]),
        .target(name: "IngotForward", dependencies: ["IngotCore", "IngotFormats", "IngotModel", "COpenBLAS", "CKernels"], swiftSettings: optimizedInDebug),
        .target(name: "IngotCalibration", dependencies: ["IngotCore", "IngotFormats", "IngotModel", "IngotForward"], swiftSettings: optimizedInDebug),
        .target(name: "IngotQuant", dependencies: ["IngotCore", "IngotFormats", "IngotModel", "IngotForward",
                                                   "IngotCalibration", "COpenBLAS", "CKernels"], swiftSettings: optimizedInDebug),
        .target(name: "IngotVerify", dependencies: ["IngotCore", "IngotFormats", "IngotModel", "IngotForward"]),
        .target(name: "IngotPipeline", dependencies: ["IngotCore", "IngotFormats", "IngotModel", "IngotForward",
                                                      "IngotCalibration", "IngotQuant", "IngotVerify",
                                                      .product(name: "Yams", package: "Yams")]),
        .target(name: "IngotCLI", dependencies: ["IngotCore", "IngotFormats", "IngotModel", "IngotForward",
                                                 "IngotCalibration", "IngotQuant", "IngotVerify", "IngotPipeline",
                                                 .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "ingot", dependencies: ["IngotCLI", "IngotForward"]),

        // Fuzz targets (scripts/fuzz builds them with libFuzzer; normal builds replay corpora).
        .target(name: "IngotFuzzTargets", dependencies: ["IngotCore", "IngotFormats", "IngotModel", "IngotQuant", "IngotForward", "IngotPipeline"]),
        .executableTarget(name: "ingot-fuzz", dependencies: ["IngotFuzzTargets"]),

        // Helpers every test target shares: the repository root, fixtures, temporary directories.
        .target(name: "IngotTestSupport", dependencies: ["IngotCore"], path: "Tests/IngotTestSupport"),
        .testTarget(name: "IngotCoreTests", dependencies: ["IngotCore", "IngotTestSupport"]),
        .testTarget(name: "IngotFormatsTests", dependencies: ["IngotCore", "IngotFormats", "IngotFuzzTargets", "IngotTestSupport"]),
        .testTarget(name: "IngotModelTests", dependencies: ["IngotModel"]),
        .testTarget(name: "IngotForwardTests", dependencies: ["IngotCore", "IngotFormats", "IngotModel", "IngotForward", "CKernels", "IngotTestSupport"]),
        .testTarget(name: "IngotCalibrationTests", dependencies: ["IngotCore", "IngotFormats", "IngotCalibration", "IngotTestSupport"]),
        .testTarget(name: "IngotQuantTests", dependencies: ["IngotCore", "IngotFormats", "IngotModel", "IngotForward", "IngotCalibration", "IngotQuant",
                                                            "CKernels", "IngotTestSupport"]),
        .testTarget(name: "IngotVerifyTests", dependencies: ["IngotCore", "IngotFormats", "IngotForward", "IngotVerify", "IngotTestSupport"]),
        .testTarget(name: "IngotPipelineTests", dependencies: ["IngotQuant", "IngotPipeline"]),
        .testTarget(name: "IngotCLITests", dependencies: ["IngotCLI", "IngotForward", "IngotCore", "IngotFormats", "IngotCalibration", "IngotQuant", "ingot",
                                                          "IngotTestSupport"]),
    ]
)
