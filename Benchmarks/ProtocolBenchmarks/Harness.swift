import Foundation

/// Runs an operation repeatedly for a fixed wall-clock budget and reports its rate.
struct Measurement {
    let name: String
    let operations: Int
    let seconds: Double
    var perSecond: Double { Double(operations) / seconds }
    var microseconds: Double { seconds / Double(operations) * 1e6 }
}

/// Keeps results observable so the optimiser cannot delete the measured work.
nonisolated(unsafe) var blackHole: Int = 0

@inline(never)
func consume<T>(_ value: T) {
    withUnsafeBytes(of: value) { blackHole &+= $0.count }
}

/// The best of five rounds of `budget / 5` seconds each: on a shared virtual machine the speed
/// changes from second to second, and the fastest round is the one least disturbed.
func measure(_ name: String, budget: Double = 1.0, batch: Int = 64, _ body: () throws -> Void) rethrows -> Measurement {
    // Warm up caches, lazy statics and the allocator.
    for _ in 0..<batch { try body() }
    let clock = ContinuousClock()
    var best: Measurement?
    for _ in 0..<5 {
        var operations = 0
        let start = clock.now
        var elapsed: Duration = .zero
        repeat {
            for _ in 0..<batch { try body() }
            operations += batch
            elapsed = clock.now - start
        } while elapsed < .seconds(budget / 5)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        let round = Measurement(name: name, operations: operations, seconds: seconds)
        if best == nil || round.microseconds < best!.microseconds { best = round }
    }
    return best!
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

func format(_ value: Double, decimals: Int = 2) -> String {
    String(format: "%.\(decimals)f", value)
}
