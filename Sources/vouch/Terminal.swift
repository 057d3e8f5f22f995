import Foundation
import Synchronization

/// Terminal manners for the technician's commands: colour and progress only when a person is watching.
/// Colour needs the stream to be a terminal, `NO_COLOR` unset (https://no-color.org) and a `TERM` other
/// than "dumb"; pipes, files and `--json` never get escape codes.
enum Terminal {
    enum Style: String {
        case ok = "32"
        case warn = "33"
        case fail = "1;31"
        case dim = "2"
    }

    static func isTerminal(_ descriptor: Int32) -> Bool { isatty(descriptor) != 0 }

    static func coloursAllowed(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        (environment["NO_COLOR"] ?? "").isEmpty && environment["TERM"] != "dumb"
    }

    static let stdoutColour = isTerminal(STDOUT_FILENO) && coloursAllowed()
    static let stderrColour = isTerminal(STDERR_FILENO) && coloursAllowed()

    /// `text` in `style` when standard output takes colour; `text` unchanged otherwise. Apply it after any
    /// padding: escape codes have no width.
    static func paint(_ text: String, _ style: Style, stderr: Bool = false) -> String {
        (stderr ? stderrColour : stdoutColour) ? "\u{1B}[\(style.rawValue)m\(text)\u{1B}[0m" : text
    }
}

/// A line on standard error that says what a slow step is doing and for how long, shown only on a
/// terminal and only once the step has lasted a second; `finish()` erases it. Safe to update from any
/// thread: the state and every write to the line are under one lock.
final class ProgressLine: Sendable {
    private struct State {
        var label: String
        var shown = false
        var finished = false
    }
    private let state: Mutex<State>
    private let started = ContinuousClock.now

    init(_ label: String, after delay: Duration = .seconds(1)) {
        state = Mutex(State(label: label))
        guard Terminal.isTerminal(STDERR_FILENO) else {
            state.withLock { $0.finished = true }
            return
        }
        let thread = Thread { [self] in
            Thread.sleep(forTimeInterval: Self.seconds(delay))
            while tick() { Thread.sleep(forTimeInterval: 0.25) }
        }
        thread.start()
    }

    func update(_ label: String) { state.withLock { $0.label = label } }

    /// Erases the line (if it was shown); nothing is drawn afterwards. Calling it again does nothing.
    func finish() {
        state.withLock { s in
            guard !s.finished else { return }
            if s.shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            s.finished = true
        }
    }

    /// Redraws the line; false once finished.
    private func tick() -> Bool {
        state.withLock { s in
            guard !s.finished else { return false }
            let elapsed = Int(Self.seconds(ContinuousClock.now - started))
            FileHandle.standardError.write(Data("\r\u{1B}[K\(s.label)… \(elapsed) s".utf8))
            s.shown = true
            return true
        }
    }

    private static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
