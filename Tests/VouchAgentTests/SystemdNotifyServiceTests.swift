import Logging
import Synchronization
import Testing

@testable import VouchAgent

/// ``SystemdNotifyService`` with a recording `notify`, pings that fall due when the test says so, and a
/// pipeline probe the test controls: the watchdog is fed only while the pipeline answers. No assertion
/// depends on timing. (The datagrams themselves are tested in VouchCoreTests' SystemdNotifyTests, and the
/// whole agent under a fake systemd in Tests/EndToEnd/test_systemd_notify.py.)
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
        private let asked = Mutex(0)
        let answers: Int
        init(answers: Int) { self.answers = answers }
        var calls: Int { asked.withLock { $0 } }
        func answer() async {
            let call = asked.withLock { n -> Int in
                n += 1
                return n
            }
            if call > answers { try? await Task.sleep(for: .seconds(3_600)) }
        }
    }

    /// The pings' clock, advanced by the test: `next()` returns once per `tick()`, and throws when cancelled.
    final class Ticks: Sendable {
        private struct State {
            var due = 0
            var waiter: CheckedContinuation<Void, Error>?
            var cancelled = false
        }
        private let state = Mutex(State())

        func tick() {
            let waiter = state.withLock { s -> CheckedContinuation<Void, Error>? in
                guard let w = s.waiter else {
                    s.due += 1
                    return nil
                }
                s.waiter = nil
                return w
            }
            waiter?.resume()
        }

        func next() async throws {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
                    let outcome = state.withLock { s -> Bool? in
                        if s.cancelled { return false }
                        if s.due > 0 {
                            s.due -= 1
                            return true
                        }
                        s.waiter = c
                        return nil
                    }
                    switch outcome {
                    case true?: c.resume()
                    case false?: c.resume(throwing: CancellationError())
                    case nil: break
                    }
                }
            } onCancel: {
                let waiter = state.withLock { s -> CheckedContinuation<Void, Error>? in
                    s.cancelled = true
                    defer { s.waiter = nil }
                    return s.waiter
                }
                waiter?.resume(throwing: CancellationError())
            }
        }
    }

    /// Waits (without a deadline that could fail a slow run; 60 s at most) until `condition` holds.
    func eventually(_ condition: () -> Bool) async {
        for _ in 0..<12_000 where !condition() { try? await Task.sleep(for: .milliseconds(5)) }
    }

    @Test(arguments: [3, 10])
    func theWatchdogIsFedOncePerAnswerAndNeverAfterThePipelineStopsAnswering(answers: Int) async {
        let recorder = Recorder(), pipeline = Pipeline(answers: answers)
        let ticks = Ticks()
        let service = SystemdNotifyService(
            watchdogInterval: .seconds(15), nextPing: { try await ticks.next() }, notify: { recorder.record($0) }, whenReady: {},
            pipelineAnswers: { await pipeline.answer() }, status: { "test-1 recording" }, logger: Logger(label: "test"))
        let task = Task { try await service.run() }

        await eventually { recorder.messages.count == 1 }
        #expect(recorder.messages == ["READY=1 STATUS=test-1 recording"])
        for n in 1...answers {
            ticks.tick()
            await eventually { recorder.pings == n }
        }
        #expect(recorder.pings == answers)
        // The next ping falls due and the pipeline does not answer: nothing is sent, however many fall due.
        ticks.tick()
        await eventually { pipeline.calls == answers + 1 }
        for _ in 0..<5 { ticks.tick() }
        try? await Task.sleep(for: .milliseconds(100))
        #expect(recorder.pings == answers, "\(recorder.messages)")

        task.cancel()  // shutdown
        _ = await task.result
        #expect(recorder.pings == answers, "no last ping when the shutdown releases the wedged probe")
        #expect(recorder.messages.last?.hasPrefix("STOPPING=1") == true, "shutdown is still announced: \(recorder.messages)")
    }
}
