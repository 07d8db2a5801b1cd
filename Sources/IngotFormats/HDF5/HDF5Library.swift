@preconcurrency import CHDF5
import Foundation
import IngotCore

/// Process-wide access to libhdf5: initialised once with its own error printing silenced, and every call
/// serialised (the Debian build is not thread-safe).
enum HDF5Library {
    private static let lock = NSLock()
    private static let initialised: Bool = {
        // No library shutdown at exit: after a failed write (disk full, file size limit) libhdf5's cleanup would
        // flush the broken file's caches and crash. Files are closed explicitly; the OS reclaims the rest.
        H5dont_atexit()
        H5open()
        H5Eset_auto2(0, nil, nil)  // H5E_DEFAULT: silence libhdf5's stack printing; failures become thrown errors
        return true
    }()

    /// Runs `body` holding the library lock.
    static func withLock<T>(_ body: () throws -> T) rethrows -> T {
        _ = initialised
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// HDF5 files start with this signature at offset 0, 512, 1024, 2048, …
    static let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Whether `path` carries an HDF5 signature where the format allows it (checked before libhdf5 sees it).
    static func hasSignature(_ path: String) throws -> Bool {
        let file = try MappedFile(path: path)
        return withExtendedLifetime(file) { hasSignature(file.bytes) }
    }

    static func hasSignature(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset + 8 <= bytes.count {
            if bytes[offset..<offset + 8].elementsEqual(signature) { return true }
            offset = offset == 0 ? 512 : offset * 2
        }
        return false
    }

    /// File access constants (macros in C).
    static let accReadOnly: UInt32 = 0x0000
    static let accTruncate: UInt32 = 0x0002
    static let accExclusive: UInt32 = 0x0004
}

/// The signature check Ingot runs before libhdf5 sees a file (public for fuzzing).
public enum HDF5SignatureCheck {
    public static func hasSignature(_ path: String) throws -> Bool { try HDF5Library.hasSignature(path) }
    public static func hasSignature(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { HDF5Library.hasSignature($0) } }
}
