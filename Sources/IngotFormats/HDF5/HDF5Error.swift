/// Failures reading or writing HDF5, each naming the file and (where there is one) the dataset.
public enum HDF5Error: Error, CustomStringConvertible, Equatable {
    case notHDF5(file: String)
    case cannotOpen(file: String)
    case cannotCreate(file: String)
    case call(file: String, dataset: String, operation: String)
    case unsupportedType(file: String, dataset: String, reason: String)
    case invalidAttribute(file: String, dataset: String, attribute: String, reason: String)
    case sizeMismatch(file: String, dataset: String, expected: Int, actual: Int)
    case duplicateTensor(file: String, tensor: String)

    public var description: String {
        switch self {
        case let .notHDF5(f): "\(f): not an HDF5 file (no HDF5 signature at offset 0, 512, 1024, …)"
        case let .cannotOpen(f): "\(f): libhdf5 cannot open the file (damaged or unsupported HDF5)"
        case let .cannotCreate(f): "\(f): libhdf5 cannot create the file"
        case let .call(f, d, op): "\(f): dataset '\(d)': \(op) failed"
        case let .unsupportedType(f, d, r): "\(f): dataset '\(d)': unsupported element type (\(r))"
        case let .invalidAttribute(f, d, a, r): "\(f): dataset '\(d)': attribute '\(a)' \(r)"
        case let .sizeMismatch(f, d, e, a): "\(f): dataset '\(d)': \(a) bytes stored, \(e) expected"
        case let .duplicateTensor(f, t): "\(f): two datasets map to tensor name '\(t)'"
        }
    }
}
