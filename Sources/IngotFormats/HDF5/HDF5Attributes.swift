@preconcurrency import CHDF5
import IngotCore

/// String attributes (fixed-length or variable-length, as h5py writes them).
enum HDF5Attributes {
    /// Every string attribute of an object, in name order. Non-string attributes are skipped.
    static func readAllStrings(_ obj: hid_t, file: String, dataset: String) throws -> [(key: String, value: String)] {
        final class Box { var names: [String] = [] }
        let box = Box()
        var idx: hsize_t = 0
        _ = H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, { _, name, _, op in
            guard let name, let op else { return 0 }
            Unmanaged<Box>.fromOpaque(op).takeUnretainedValue().names.append(String(cString: name))
            return 0
        }, Unmanaged.passUnretained(box).toOpaque())
        var out: [(key: String, value: String)] = []
        for n in box.names {
            if let v = try readString(obj, n, file: file, dataset: dataset) { out.append((n, v)) }
        }
        return out
    }

    /// The value of a string attribute, nil if the attribute is not a string.
    static func readString(_ obj: hid_t, _ name: String, file: String, dataset: String) throws -> String? {
        let a = H5Aopen(obj, name, 0)
        guard a >= 0 else { return nil }
        defer { H5Aclose(a) }
        let t = H5Aget_type(a)
        defer { H5Tclose(t) }
        guard H5Tget_class(t) == H5T_STRING else { return nil }
        let space = H5Aget_space(a)
        defer { H5Sclose(space) }
        guard H5Sget_simple_extent_npoints(space) == 1 else {
            throw HDF5Error.invalidAttribute(file: file, dataset: dataset, attribute: name, reason: "is not a single string")
        }
        if H5Tis_variable_str(t) > 0 {
            let mem = H5Tcopy(H5T_C_S1_g)
            defer { H5Tclose(mem) }
            H5Tset_size(mem, -1)  // H5T_VARIABLE = (size_t)-1
            H5Tset_cset(mem, H5Tget_cset(t))
            var ptr: UnsafeMutablePointer<CChar>? = nil
            guard H5Aread(a, mem, &ptr) >= 0 else {
                throw HDF5Error.invalidAttribute(file: file, dataset: dataset, attribute: name, reason: "cannot be read")
            }
            defer { if ptr != nil { H5free_memory(ptr) } }
            return ptr.map { String(cString: $0) } ?? ""
        }
        let size = H5Tget_size(t)
        guard size > 0, size < 1 << 24 else {
            throw HDF5Error.invalidAttribute(file: file, dataset: dataset, attribute: name, reason: "has an invalid length")
        }
        var buf = [UInt8](repeating: 0, count: size + 1)
        guard H5Aread(a, t, &buf) >= 0 else {
            throw HDF5Error.invalidAttribute(file: file, dataset: dataset, attribute: name, reason: "cannot be read")
        }
        let end = buf.firstIndex(of: 0) ?? size
        return String(decoding: buf[0..<end], as: UTF8.self)
    }

    /// Writes a variable-length UTF-8 string attribute (h5py's default for `attrs[name] = str`).
    static func writeString(_ obj: hid_t, _ name: String, _ value: String) -> Bool {
        let t = H5Tcopy(H5T_C_S1_g)
        defer { H5Tclose(t) }
        H5Tset_size(t, -1)  // H5T_VARIABLE = (size_t)-1
        H5Tset_cset(t, H5T_CSET_UTF8)
        let space = H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        let a = H5Acreate2(obj, name, t, space, 0, 0)
        guard a >= 0 else { return false }
        defer { H5Aclose(a) }
        return value.withCString { c in
            var p: UnsafePointer<CChar>? = c
            return H5Awrite(a, t, &p) >= 0
        }
    }
}
