import CKernels
import IngotCore
import IngotFormats

/// One 2-D weight quantized straight from its stored bytes, a block of rows at a time: each block is decoded to
/// f32 in a scratch buffer borrowed from a `ScratchPool`, scanned for `WeightHealth`, quantized and (4-bit) packed,
/// so no f32 copy of the tensor is made and nothing is allocated per block or group. Blocks are independent:
/// `run(block:)` may be called from any thread, in any order, so a job can spread the blocks of several tensors
/// over its workers. The codes, scales, zero points and health are exactly what decoding the whole tensor and
/// calling `IntQuantizer.quantize` / `FP8Quantizer.quantize` and `WeightHealth.scan` give: the rows go through the
/// same `quantizeRow` / `quantizeRows` and `scanRows`.
final class RowBlockQuantization: @unchecked Sendable {
    enum Quantizer { case int(IntQuantizer), fp8(FP8Quantizer) }

    let view: TensorView
    let rows: Int, columns: Int
    let precision: ComputePrecision
    let quantizer: Quantizer
    let healthGroupSize: Int?, fp8Max: Float?
    /// Rows per block: about 64 Ki elements (the block's f32 rows stay in L2), whole FP8 scale cells.
    let blockRows: Int
    let blockCount: Int
    /// 4-bit codes are stored two per byte (rows have an even number of columns, so rows pack independently).
    let packed: Bool
    let codes: TensorBuffer
    let scaleColumns: Int, scaleRows: Int
    private let scales: UnsafeMutableBufferPointer<Float>
    private let zeros: UnsafeMutableBufferPointer<UInt8>
    private var health: [WeightHealth]
    private var failures: [Error?]
    private let pool: ScratchPool

    /// Elements per block (before rounding to whole rows and scale cells).
    static let blockElements = 1 << 16

    /// A block quantization of `view` (`[rows, columns]`, as `settings` says), or nil when the tensor needs the
    /// whole-tensor path: per-tensor FP8 scales (a scale over every row), odd 4-bit rows, stored dtypes other
    /// than f32/f16/bf16, other number formats.
    init?(view: TensorView, rows: Int, columns: Int, dtype: DType, settings s: QuantizationPlan.Settings, pool: ScratchPool) {
        guard [DType.f32, .f16, .bf16].contains(view.dtype), rows > 0, columns > 0,
              let width = view.dtype.byteWidth, view.byteCount == rows * columns * width, let codeType = s.scheme.codeDType else { return nil }
        switch s.scheme.codes {
        case .int:
            guard let q = s.intQuantizer else { return nil }
            quantizer = .int(q)
            packed = q.bits == 4 && codeType == .u4
            if packed, columns % 2 != 0 { return nil }
            scaleColumns = q.groupCount(columns: columns)
            scaleRows = rows
            blockRows = max(1, Self.blockElements / columns)
        case .fp8(let format):
            guard s.fp8Granularity != .tensor else { return nil }
            let q = FP8Quantizer(format: format, granularity: s.fp8Granularity)
            quantizer = .fp8(q)
            packed = false
            scaleColumns = q.scaleColumns(columns: columns)
            scaleRows = q.scaleRows(rows: rows)
            let cell = q.rowsPerCell(rows: rows)
            blockRows = max(1, Self.blockElements / columns / cell) * cell
        default:
            return nil
        }
        self.view = view
        self.rows = rows
        self.columns = columns
        self.precision = ComputePrecision(dtype: dtype)
        self.pool = pool
        healthGroupSize = s.groupSize
        fp8Max = s.scheme.fp8Format?.maxValue
        blockCount = (rows + blockRows - 1) / blockRows
        codes = TensorBuffer(uninitializedByteCount: packed ? rows * columns / 2 : rows * columns)
        scales = .allocate(capacity: max(1, scaleRows * scaleColumns))
        zeros = .allocate(capacity: max(1, scaleRows * scaleColumns))
        health = Array(repeating: WeightHealth(), count: blockCount)
        failures = Array(repeating: nil, count: blockCount)
    }

    deinit {
        scales.deallocate()
        zeros.deallocate()
    }

    /// Decodes, scans and quantizes block `b` (rows `b·blockRows ..< (b+1)·blockRows`). Thread-safe across blocks.
    func run(block b: Int) {
        let r0 = b * blockRows, n = min(blockRows, rows - r0), count = n * columns
        let width = view.dtype.byteWidth!
        // f32 rows, then (4-bit) one code byte per element before packing.
        pool.withBuffer(byteCount: count * 4 + (packed ? count : 0)) { scratch in
            let x = scratch.baseAddress!.assumingMemoryBound(to: Float.self)
            let src = UnsafeRawBufferPointer(rebasing: view.bytes[(r0 * columns * width)..<((r0 + n) * columns * width)])
            do {
                try FloatCodecs.decode(src, dtype: view.dtype, count: count, into: UnsafeMutableRawBufferPointer(rebasing: scratch[0..<(count * 4)]),
                                       threads: 1)
            } catch {
                failures[b] = error
                return
            }
            var h = WeightHealth.scanRows(UnsafeBufferPointer(start: x, count: count), rows: 0..<n, columns: columns,
                                          groupSize: healthGroupSize ?? columns, fp8Max: fp8Max)
            h.firstNonFinite = h.firstNonFinite.map { $0 + r0 * columns }
            health[b] = h
            let out = codes.storage.baseAddress!.assumingMemoryBound(to: UInt8.self)
            switch quantizer {
            case .int(let q):
                let rowCodes = packed ? (scratch.baseAddress! + count * 4).assumingMemoryBound(to: UInt8.self) : out + r0 * columns
                for r in 0..<n {
                    q.quantizeRow(x + r * columns, columns: columns, precision: precision, codes: rowCodes + r * columns,
                                  scales: scales.baseAddress! + (r0 + r) * scaleColumns, zeros: zeros.baseAddress! + (r0 + r) * scaleColumns)
                }
                if packed { ck_pack_nibbles(rowCodes, count / 2, out + r0 * columns / 2) }
            case .fp8(let q):
                q.quantizeRows(x, rows: n, columns: columns, precision: precision, codes: out + r0 * columns,
                               scales: scales.baseAddress! + (r0 / q.rowsPerCell(rows: rows)) * scaleColumns)
            }
        }
    }

    /// After every block has run: the first decoding failure, if any.
    func check() throws {
        if let e = failures.lazy.compactMap({ $0 }).first { throw e }
    }

    /// The tensor's health (blocks merged in order, as `WeightHealth.scan` merges its own).
    var mergedHealth: WeightHealth {
        var h = WeightHealth()
        for p in health {
            h.nan += p.nan; h.infinite += p.infinite; h.denormal += p.denormal
            h.zeroRows += p.zeroRows; h.zeroGroups += p.zeroGroups; h.beyondFP8 += p.beyondFP8
            if h.firstNonFinite == nil { h.firstNonFinite = p.firstNonFinite }
        }
        return h
    }

    /// The quantized weight's description, scales and zero points (codes stay in `codes`, stored form).
    var weight: QuantizedWeight {
        let s = Array(UnsafeBufferPointer(rebasing: scales[0..<(scaleRows * scaleColumns)]))
        switch quantizer {
        case .int(let q):
            return QuantizedWeight(scheme: q.symmetric ? .intSymmetric : .intAffine, bits: q.bits,
                                   granularity: q.groupSize == nil ? .channel : .group, groupSize: q.groupSize, block: nil,
                                   rows: rows, columns: columns, codes: [], scales: s, scaleDType: q.scaleDType(precision),
                                   zeros: q.symmetric ? nil : Array(UnsafeBufferPointer(rebasing: zeros[0..<(scaleRows * scaleColumns)])),
                                   codeOffset: q.codeOffset)
        case .fp8(let q):
            return QuantizedWeight(scheme: q.format == .e4m3 ? .fp8E4M3 : .fp8E5M2, bits: 8, granularity: q.granularity, groupSize: nil,
                                   block: q.granularity == .block ? q.block : nil, rows: rows, columns: columns, codes: [], scales: s,
                                   scaleDType: precision.dtype, zeros: nil, codeOffset: 0)
        }
    }
}
