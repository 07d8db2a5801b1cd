@preconcurrency import CHDF5
import IngotCore
#if canImport(Glibc)
import Glibc
#endif

/// Writes a checkpoint as HDF5, one contiguous dataset per tensor (path = name with `.` → `/`, original name in a
/// `name` attribute, dtype in a `dtype` attribute; bf16/FP8 stored as unsigned integers), metadata as root string
/// attributes. libhdf5 writes a temporary file beside the destination; `commit()` fsyncs and renames it
/// (`Destinations` rules). After any failed call the file is abandoned without calling libhdf5 on it again
/// (closing a file whose writes failed crashes inside the library): the temporary is simply removed.
public final class HDF5Writer {
    public let path: String
    let temporaryPath: String
    private let overwrite: Bool
    private var fid: hid_t
    private var committed = false

    public init(path: String, metadata: [(key: String, value: String)] = [], overwrite: Bool = false) throws {
        self.path = path
        self.overwrite = overwrite
        try Destinations.claim(path, kind: .file, overwrite: overwrite)
        temporaryPath = Destinations.temporaryName(for: path)
        let tmp = temporaryPath
        errno = 0
        fid = HDF5Library.withLock { H5Fcreate(tmp, HDF5Library.accExclusive, 0, 0) }
        guard fid >= 0 else {
            let e = errno
            Destinations.release(path)
            throw e != 0 ? IOError(.create, path: path, errno: e) : HDF5Error.cannotCreate(file: path)
        }
        Destinations.temporaries.add(tmp)
        for (k, v) in metadata where !HDF5Library.withLock({ HDF5Attributes.writeString(fid, k, v) }) {
            abandon()
            throw HDF5Error.call(file: path, dataset: "/", operation: "write attribute '\(k)'")
        }
    }

    deinit { if !committed { discard() } }

    /// Gives up on a file after a failed libhdf5 call: never touches it through the library again.
    private func abandon() {
        fid = -1
        discard()
    }

    /// Adds one tensor with all its bytes.
    public func add(name: String, dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer) throws {
        guard let n = ShapeMath.byteCount(shape, dtype), n == bytes.count else {
            throw HDF5Error.sizeMismatch(file: path, dataset: name, expected: ShapeMath.byteCount(shape, dtype) ?? -1, actual: bytes.count)
        }
        let h5Path = name.split(separator: ".", omittingEmptySubsequences: false).joined(separator: "/")
        guard fid >= 0 else { throw HDF5Error.call(file: path, dataset: h5Path, operation: "write (the file was abandoned after an earlier failure)") }
        do { try write(h5Path, name: name, dtype: dtype, shape: shape, bytes: bytes, byteCount: n) } catch {
            abandon()
            throw error
        }
    }

    private func write(_ h5Path: String, name: String, dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer, byteCount n: Int) throws {
        try HDF5Library.withLock {
            let type = try Self.fileType(dtype, file: path, dataset: name)
            defer { H5Tclose(type) }
            var dims = shape.map { hsize_t($0) }
            let space = shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(shape.count), &dims, nil)
            defer { H5Sclose(space) }
            let lcpl = H5Pcreate(H5P_CLS_LINK_CREATE_ID_g)
            defer { H5Pclose(lcpl) }
            H5Pset_create_intermediate_group(lcpl, 1)
            let d = H5Dcreate2(fid, h5Path, type, space, lcpl, 0, 0)
            guard d >= 0 else { throw HDF5Error.call(file: path, dataset: h5Path, operation: "create (does another tensor's name clash with this path?)") }
            defer { H5Dclose(d) }
            if n > 0, H5Dwrite(d, type, 0, 0, 0, bytes.baseAddress) < 0 {
                throw HDF5Error.call(file: path, dataset: h5Path, operation: "write")
            }
            guard HDF5Attributes.writeString(d, "name", name), HDF5Attributes.writeString(d, "dtype", dtype.rawValue) else {
                throw HDF5Error.call(file: path, dataset: h5Path, operation: "write attributes")
            }
        }
    }

    /// Closes the file, fsyncs and renames it into place.
    public func commit() throws {
        let tmp = temporaryPath
        guard fid >= 0 else { throw HDF5Error.call(file: path, dataset: "/", operation: "close (the file was abandoned after an earlier failure)") }
        let ok = HDF5Library.withLock { H5Fclose(fid) >= 0 }
        fid = -1
        guard ok else { discard(); throw HDF5Error.call(file: path, dataset: "/", operation: "close (disk full?)") }
        let fd = open(tmp, O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            let r = fsync(fd)
            let e = errno
            close(fd)
            if r != 0 { discard(); throw IOError(.sync, path: path, errno: e) }
        }
        do { try Destinations.publishFile(tmp, at: path, overwrite: overwrite) } catch {
            discard()
            throw error
        }
        committed = true
    }

    public func discard() {
        if fid >= 0 { HDF5Library.withLock { _ = H5Fclose(fid) }; fid = -1 }
        if !committed {
            unlink(temporaryPath)
            Destinations.temporaries.remove(temporaryPath)
            Destinations.release(path)
        }
        committed = true
    }

    /// HDF5 file type for a dtype: IEEE floats (f16 as h5py's half), integers, bf16/FP8 as unsigned integers.
    static func fileType(_ dtype: DType, file: String, dataset: String) throws -> hid_t {
        switch dtype {
        case .f32: return H5Tcopy(H5T_IEEE_F32LE_g)
        case .f64: return H5Tcopy(H5T_IEEE_F64LE_g)
        case .f16:
            let t = H5Tcopy(H5T_IEEE_F32LE_g)
            H5Tset_fields(t, 15, 10, 5, 0, 10)
            H5Tset_size(t, 2)
            H5Tset_ebias(t, 15)
            return t
        case .bf16, .u16: return H5Tcopy(H5T_STD_U16LE_g)
        case .i16: return H5Tcopy(H5T_STD_I16LE_g)
        case .u8, .bool, .f8e4m3, .f8e5m2, .f8e8m0, .f8e4m3fnuz, .f8e5m2fnuz: return H5Tcopy(H5T_STD_U8LE_g)
        case .i8: return H5Tcopy(H5T_STD_I8LE_g)
        case .i32: return H5Tcopy(H5T_STD_I32LE_g)
        case .u32: return H5Tcopy(H5T_STD_U32LE_g)
        case .i64: return H5Tcopy(H5T_STD_I64LE_g)
        case .u64: return H5Tcopy(H5T_STD_U64LE_g)
        default: throw HDF5Error.unsupportedType(file: file, dataset: dataset, reason: "\(dtype.rawValue) cannot be stored")
        }
    }
}
