@preconcurrency import CHDF5
import IngotCore

/// A checkpoint stored as HDF5: one dataset per tensor.
///
/// Tensor names are the dataset paths with `/` read as `.` (what h5py writes from a PyTorch state dict), or the
/// dataset's `name` attribute when present (Ingot writes it). Keras 3 `.weights.h5` files
/// (`layers/<name>/vars/<i>`) keep their paths as names. bf16 and FP8 tensors are stored as 16/8-bit unsigned
/// integers with a string attribute `dtype`. Contiguous, unfiltered little-endian datasets are read zero-copy
/// from a memory map of the file; chunked or compressed ones are decoded by libhdf5 into an owned buffer.
/// Root string attributes are the file's metadata.
public final class HDF5File: TensorSource, FormatNamed, @unchecked Sendable {
    public let path: String
    public let tensors: [TensorInfo]
    public let metadata: [(key: String, value: String)]
    public let isKeras: Bool
    public var formatName: String { isKeras ? "hdf5 (keras weights)" : "hdf5" }

    struct Dataset {
        let h5Path: String
        let zeroCopyOffset: Int?
    }

    private let file: MappedFile
    private let fileID: hid_t
    private let datasets: [String: Dataset]

    public init(path: String) throws {
        self.path = path
        guard try HDF5Library.hasSignature(path) else { throw HDF5Error.notHDF5(file: path) }
        let mapped = try MappedFile(path: path)
        file = mapped
        let fid = HDF5Library.withLock { H5Fopen(path, HDF5Library.accReadOnly, 0) }
        guard fid >= 0 else { throw HDF5Error.cannotOpen(file: path) }
        fileID = fid
        do {
            let paths = try HDF5Library.withLock { try Self.datasetPaths(fid, file: path) }
            let keras = path.hasSuffix(".weights.h5") || paths.contains { $0.contains("/vars/") }
            isKeras = keras
            var infos: [TensorInfo] = []
            var map: [String: Dataset] = [:]
            for p in paths {
                let (info, ds) = try HDF5Library.withLock { try Self.describe(fid, p, keras: keras, file: path, size: mapped.count) }
                guard map[info.name] == nil else { throw HDF5Error.duplicateTensor(file: path, tensor: info.name) }
                map[info.name] = ds
                infos.append(info)
            }
            tensors = infos
            datasets = map
            metadata = try HDF5Library.withLock { try HDF5Attributes.readAllStrings(fid, file: path, dataset: "/") }
                .filter { $0.key != "ingot_order" }
        } catch {
            HDF5Library.withLock { _ = H5Fclose(fid) }
            throw error
        }
    }

    deinit { HDF5Library.withLock { _ = H5Fclose(fileID) } }

    public func tensor(named name: String) throws -> TensorView {
        guard let ds = datasets[name], let info = info(name) else { throw SourceError.noSuchTensor(name: name, path: path) }
        if let off = ds.zeroCopyOffset, let bytes = file.slice(offset: off, length: info.byteCount) {
            return TensorView(name: name, dtype: info.dtype, shape: info.shape, bytes: bytes, owner: file)
        }
        let buffer = TensorBuffer(byteCount: info.byteCount)
        try HDF5Library.withLock {
            let d = H5Dopen2(fileID, ds.h5Path, 0)
            guard d >= 0 else { throw HDF5Error.call(file: path, dataset: ds.h5Path, operation: "open") }
            defer { H5Dclose(d) }
            let t = H5Dget_type(d)
            defer { H5Tclose(t) }
            if info.byteCount > 0 {
                guard H5Dread(d, t, 0, 0, 0, buffer.storage.baseAddress) >= 0 else {
                    throw HDF5Error.call(file: path, dataset: ds.h5Path, operation: "read")
                }
            }
        }
        return buffer.view(name: name, dtype: info.dtype, shape: info.shape, byteCount: info.byteCount)
    }

    /// Every dataset path in the file, sorted by name (deterministic).
    static func datasetPaths(_ fid: hid_t, file: String) throws -> [String] {
        final class Box { var names: [String] = [] }
        let box = Box()
        let ctx = Unmanaged.passUnretained(box).toOpaque()
        let status = H5Lvisit(fid, H5_INDEX_NAME, H5_ITER_INC, { _, name, info, op in
            guard let name, let info, let op, info.pointee.type == H5L_TYPE_HARD else { return 0 }
            Unmanaged<Box>.fromOpaque(op).takeUnretainedValue().names.append(String(cString: name))
            return 0
        }, ctx)
        guard status >= 0 else { throw HDF5Error.cannotOpen(file: file) }
        var out: [String] = []
        for n in box.names {
            let o = H5Oopen(fid, n, 0)
            guard o >= 0 else { continue }
            if H5Iget_type(o) == H5I_DATASET { out.append(n) }
            H5Oclose(o)
        }
        return out.sorted()
    }

    /// Reads a dataset's type, shape, attributes and storage layout.
    static func describe(_ fid: hid_t, _ p: String, keras: Bool, file: String, size: Int) throws -> (TensorInfo, Dataset) {
        let d = H5Dopen2(fid, p, 0)
        guard d >= 0 else { throw HDF5Error.call(file: file, dataset: p, operation: "open") }
        defer { H5Dclose(d) }
        let attrs = try HDF5Attributes.readAllStrings(d, file: file, dataset: p)
        let name = attrs.first { $0.key == "name" }?.value ?? (keras ? p : p.split(separator: "/").joined(separator: "."))
        let t = H5Dget_type(d)
        guard t >= 0 else { throw HDF5Error.call(file: file, dataset: p, operation: "get type") }
        defer { H5Tclose(t) }
        let storedType = try storedDType(t, file: file, dataset: p)
        var dtype = storedType
        if let declared = attrs.first(where: { $0.key == "dtype" })?.value {
            guard let dt = DType(rawValue: declared) else {
                throw HDF5Error.invalidAttribute(file: file, dataset: p, attribute: "dtype", reason: "names unknown dtype '\(declared)'")
            }
            guard dt.bitWidth == storedType.bitWidth else {
                throw HDF5Error.invalidAttribute(file: file, dataset: p, attribute: "dtype",
                                                 reason: "says \(declared) but the data is \(storedType.bitWidth)-bit")
            }
            dtype = dt
        }
        let space = H5Dget_space(d)
        guard space >= 0 else { throw HDF5Error.call(file: file, dataset: p, operation: "get dataspace") }
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank >= 0, rank <= 32 else { throw HDF5Error.call(file: file, dataset: p, operation: "read rank") }
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        if rank > 0 { H5Sget_simple_extent_dims(space, &dims, nil) }
        var shape: [Int] = []
        for i in 0..<rank {
            guard dims[i] <= UInt64(Int.max) else { throw HDF5Error.call(file: file, dataset: p, operation: "read shape") }
            shape.append(Int(dims[i]))
        }
        guard let bytes = ShapeMath.byteCount(shape, dtype) else {
            throw HDF5Error.unsupportedType(file: file, dataset: p, reason: "shape × element size overflows")
        }
        // Zero-copy when stored contiguously, unfiltered, little-endian, fully inside the file.
        var zeroCopy: Int? = nil
        let dcpl = H5Dget_create_plist(d)
        if dcpl >= 0 {
            let contiguous = H5Pget_layout(dcpl) == H5D_CONTIGUOUS && H5Pget_nfilters(dcpl) == 0
            H5Pclose(dcpl)
            let off = H5Dget_offset(d)
            let little = H5Tget_order(t) == H5T_ORDER_LE || H5Tget_size(t) == 1
            if contiguous, little, off != UInt64.max, off <= UInt64(size), H5Dget_storage_size(d) == UInt64(bytes) {
                let o = Int(off)
                if o + bytes <= size { zeroCopy = o }
            }
        }
        return (TensorInfo(name: name, dtype: dtype, shape: shape, byteCount: bytes, file: file, fileOffset: zeroCopy),
                Dataset(h5Path: p, zeroCopyOffset: zeroCopy))
    }

    /// The dtype of the stored elements.
    static func storedDType(_ t: hid_t, file: String, dataset: String) throws -> DType {
        let size = H5Tget_size(t)
        switch H5Tget_class(t) {
        case H5T_FLOAT:
            switch size {
            case 2: return .f16
            case 4: return .f32
            case 8: return .f64
            default: throw HDF5Error.unsupportedType(file: file, dataset: dataset, reason: "\(size)-byte float")
            }
        case H5T_INTEGER:
            let signed = H5Tget_sign(t) == H5T_SGN_2
            switch (size, signed) {
            case (1, true): return .i8
            case (1, false): return .u8
            case (2, true): return .i16
            case (2, false): return .u16
            case (4, true): return .i32
            case (4, false): return .u32
            case (8, true): return .i64
            case (8, false): return .u64
            default: throw HDF5Error.unsupportedType(file: file, dataset: dataset, reason: "\(size)-byte integer")
            }
        case H5T_ENUM where size == 1: return .bool  // h5py stores numpy bool as an int8 enum
        default: throw HDF5Error.unsupportedType(file: file, dataset: dataset, reason: "HDF5 class \(H5Tget_class(t).rawValue)")
        }
    }
}
