import Dispatch

/// Measures elapsed wall-clock time with the monotonic clock.
struct Stopwatch {
    private var start = DispatchTime.now().uptimeNanoseconds
    mutating func restart() { start = DispatchTime.now().uptimeNanoseconds }
    var elapsed: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
}
