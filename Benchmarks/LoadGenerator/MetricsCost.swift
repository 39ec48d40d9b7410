import Dispatch
import Foundation
import Prometheus

/// What the server's metrics cost on the message path, timed in isolation with the same library
/// and buckets: per delivery the server increments `deliveries_sent` and records
/// `delivery_latency_seconds`; per batch and per socket turn it updates a few more.
enum MetricsCost {
    static let operations = 5_000_000

    static func measure() {
        let registry = PrometheusCollectorRegistry()
        @Sendable func descriptor(_ name: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "bench", metricName: name, unitName: "total", helpText: name)
        }
        let counter = registry.makeCounter(descriptor: descriptor("counter"))
        let buckets: [Duration] = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5), .seconds(30),
            .seconds(300), .seconds(3600),
        ]
        let histogram = registry.makeDurationHistogram(descriptor: descriptor("latency"), labels: [], buckets: buckets)
        report("counter increment", threads: 1) { _ in counter.increment() }
        report("counter increment, 2 threads on one counter", threads: 2) { _ in counter.increment() }
        report("latency histogram record", threads: 1) { index in histogram.record(.microseconds(index % 5000)) }
        report("latency histogram record, 2 threads", threads: 2) { index in histogram.record(.microseconds(index % 5000)) }
        report("labelled counter looked up in the registry (as at each hello)", threads: 1) { index in
            registry.makeCounter(descriptor: descriptor("hellos"), labels: [("result", index & 1 == 0 ? "ok" : "refused")]).increment()
        }
        var output: [UInt8] = []
        let started = ContinuousClock.now
        for _ in 0..<100 {
            output.removeAll(keepingCapacity: true)
            registry.emit(into: &output)
        }
        emit(String(format: "metrics: /metrics exposition of these series: %.1f µs", Double((ContinuousClock.now - started) / 100 / .nanoseconds(1)) / 1000))
    }

    private static func report(_ name: String, threads: Int, _ operation: @escaping @Sendable (Int) -> Void) {
        let perThread = operations / threads
        let started = ContinuousClock.now
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            for index in 0..<perThread { operation(index) }
        }
        let elapsed = ContinuousClock.now - started
        let nanoseconds = Double(elapsed / .nanoseconds(1)) / Double(perThread * threads) * Double(threads)
        emit(String(format: "metrics: %@: %.1f ns per operation (wall time per operation per thread)", name, nanoseconds))
    }
}
