import Logging
import Synchronization
import Testing

@testable import VouchAgent

/// ``SystemdNotifyService`` with a recording `notify` and a pipeline probe the test controls: the
/// watchdog is fed only while the pipeline answers. (The datagrams themselves are tested in
/// VouchCoreTests' SystemdNotifyTests, and the whole agent under a fake systemd in
/// Tests/EndToEnd/test_systemd_notify.py.)
struct SystemdNotifyServiceTests {
    /// Everything the service told "systemd", in order.
    final class Recorder: Sendable {
        private let sent = Mutex<[String]>([])
        func record(_ fields: [(String, String)]) { sent.withLock { $0.append(fields.map { "\($0.0)=\($0.1)" }.joined(separator: " ")) } }
        var messages: [String] { sent.withLock { $0 } }
        var pings: Int { messages.filter { $0.hasPrefix("WATCHDOG=1") }.count }
    }

    /// A pipeline that answers `answers` times, then hangs (as an actor stuck in a blocking call would).
    final class Pipeline: Sendable {
        private let left: Mutex<Int>
        init(answers: Int) { left = Mutex(answers) }
        func answer() async {
            let alive = left.withLock { n -> Bool in
                n -= 1
                return n >= 0
            }
            if !alive { try? await Task.sleep(for: .seconds(3_600)) }
        }
    }

    func service(_ recorder: Recorder, _ pipeline: Pipeline, every interval: Duration) -> SystemdNotifyService {
        SystemdNotifyService(
            watchdogInterval: interval, notify: { recorder.record($0) }, whenReady: {}, pipelineAnswers: { await pipeline.answer() },
            status: { "test-1 recording" }, logger: Logger(label: "test"))
    }

    /// Runs the service for `time`, then stops it as a shutdown would (cancellation).
    func run(_ service: SystemdNotifyService, for time: Duration) async {
        let task = Task { try await service.run() }
        try? await Task.sleep(for: time)
        task.cancel()
        _ = await task.result
    }

    @Test func theWatchdogIsFedOnlyWhileThePipelineAnswers() async {
        let recorder = Recorder()
        // Pings are due every 50 ms; the pipeline answers three times, then wedges for the remaining ~1 s.
        await run(service(recorder, Pipeline(answers: 3), every: .milliseconds(50)), for: .milliseconds(1_200))
        let messages = recorder.messages
        #expect(messages.first == "READY=1 STATUS=test-1 recording")
        #expect(recorder.pings == 3, "one ping per answer, none once the pipeline stopped answering: \(messages)")
        #expect(messages.last?.hasPrefix("STOPPING=1") == true, "shutdown is still announced: \(messages)")
    }

    @Test func aPipelineThatKeepsAnsweringKeepsTheWatchdogFed() async {
        let recorder = Recorder()
        await run(service(recorder, Pipeline(answers: .max), every: .milliseconds(50)), for: .milliseconds(1_200))
        // Due 24 times in 1.2 s; a loaded test machine may fall behind, but never to a handful.
        #expect(recorder.pings >= 8, "\(recorder.messages)")
        #expect(recorder.messages.last?.hasPrefix("STOPPING=1") == true)
    }
}
