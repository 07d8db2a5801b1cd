#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Receives progress of a long operation. Implementations must be cheap to call often.
public protocol ProgressReporter: AnyObject, Sendable {
    /// A new phase of `total` units (bytes, tokens, layers...).
    func begin(_ title: String, total: Int, unit: ProgressUnit)
    /// `done` units complete so far.
    func update(_ done: Int)
    func finish()
}

public enum ProgressUnit: Sendable { case bytes, tokens, items }

/// Reports nothing.
public final class SilentProgress: ProgressReporter {
    public init() {}
    public func begin(_ title: String, total: Int, unit: ProgressUnit) {}
    public func update(_ done: Int) {}
    public func finish() {}
}

/// A one-line bar on standard error with rate and ETA, redrawn at most 10 times a second.
/// Use `TerminalProgress.make(quiet:)`: it is silent when stderr is not a terminal or with `--quiet`.
public final class TerminalProgress: ProgressReporter, @unchecked Sendable {
    private let lock = NSLock()
    private var title = "", total = 0, unit = ProgressUnit.items
    private var start = 0.0, lastDraw = 0.0, done = 0

    public static func make(quiet: Bool) -> ProgressReporter {
        (quiet || isatty(STDERR_FILENO) == 0) ? SilentProgress() : TerminalProgress()
    }

    public func begin(_ title: String, total: Int, unit: ProgressUnit) {
        lock.withLock {
            self.title = title; self.total = max(total, 1); self.unit = unit
            start = Self.now(); lastDraw = 0; done = 0
        }
    }

    public func update(_ done: Int) {
        lock.withLock {
            self.done = done
            let t = Self.now()
            if t - lastDraw >= 0.1 { lastDraw = t; draw(t) }
        }
    }

    public func finish() {
        lock.withLock { done = total; draw(Self.now()); FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private func draw(_ t: Double) {
        let elapsed = max(t - start, 1e-9)
        let frac = min(1, Double(done) / Double(total))
        let width = 30
        let filled = Int(frac * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let rate = Double(done) / elapsed
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let rateText: String
        switch unit {
        case .bytes: rateText = Format.bytes(Int(rate)) + "/s"
        case .tokens: rateText = String(format: "%.0f tok/s", rate)
        case .items: rateText = String(format: "%.1f/s", rate)
        }
        let line = String(format: "\r%@ %@ %3.0f%% %@ ETA %@\u{1B}[K", title, bar, frac * 100, rateText,
                          Format.duration(eta))
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

/// Human-readable numbers.
public enum Format {
    public static func bytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n), i = 0
        while v >= 1024, i < units.count - 1 { v /= 1024; i += 1 }
        return i == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[i])
    }

    public static func duration(_ s: Double) -> String {
        if !s.isFinite { return "--" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60)
            : String(format: "%d:%02d", t / 60, t % 60)
    }

    /// Parses sizes like `5GB`, `500MB`, `4MiB`, `1024` (decimal units as HF's `max_shard_size`, binary for *iB).
    public static func parseSize(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces).uppercased()
        let units: [(String, Int)] = [("KIB", 1 << 10), ("MIB", 1 << 20), ("GIB", 1 << 30), ("TIB", 1 << 40),
                                      ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000),
                                      ("TB", 1_000_000_000_000), ("B", 1)]
        for (u, m) in units where t.hasSuffix(u) {
            guard let v = Double(t.dropLast(u.count).trimmingCharacters(in: .whitespaces)), v >= 0 else { return nil }
            let r = v * Double(m)
            return r < Double(Int.max) ? Int(r) : nil
        }
        return Int(t)
    }
}

/// Monotonic wall clock in seconds.
public func monotonicSeconds() -> Double { TerminalProgress.now() }
