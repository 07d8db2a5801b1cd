import ArgumentParser
import IngotCore
import IngotFormats

/// `ingot diff A B`: do two checkpoints hold the same tensors, byte for byte (whatever their formats)?
struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare the tensors of two checkpoints byte for byte (exit 1 if they differ).")

    @Argument(help: "First checkpoint.") var first: String
    @Argument(help: "Second checkpoint.") var second: String

    func run() throws {
        var differences: [String] = []
        try reportingErrors {
            let a = try Checkpoint.open(first), b = try Checkpoint.open(second)
            let namesA = Set(a.tensors.map(\.name)), namesB = Set(b.tensors.map(\.name))
            for n in namesA.subtracting(namesB).sorted() { differences.append("only in \(first): \(n)") }
            for n in namesB.subtracting(namesA).sorted() { differences.append("only in \(second): \(n)") }
            for t in a.tensors where namesB.contains(t.name) {
                let x = try a.tensor(named: t.name), y = try b.tensor(named: t.name)
                if x.dtype != y.dtype || x.shape != y.shape {
                    differences.append("\(t.name): \(x.dtype.rawValue)\(ShapeMath.describe(x.shape)) vs \(y.dtype.rawValue)\(ShapeMath.describe(y.shape))")
                    continue
                }
                let same = x.withBytes { xb in y.withBytes { yb in xb.elementsEqual(yb) } }
                if !same { differences.append("\(t.name): bytes differ") }
            }
            if differences.isEmpty { emit("identical: \(a.tensors.count) tensors, \(Format.bytes(a.totalBytes))") }
        }
        if !differences.isEmpty {
            emit(differences.joined(separator: "\n"))
            throw ExitStatus.checkFailed
        }
    }
}
