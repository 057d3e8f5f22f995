import CGPIOD
import Foundation
import VouchCore

/// GPIO through libgpiod v1 (Debian 12's 1.6). This module is the only place that calls libgpiod;
/// line requests, edge events and the technician's `vouch gpio` commands build on it.
public enum GPIOLibrary {
    /// The libgpiod version the agent is linked against, e.g. "1.6.3".
    public static var version: String { String(cString: gpiod_version_string()) }
}

/// One GPIO chip as the kernel presents it (`/dev/gpiochipN`).
public struct GPIOChipInfo: Sendable, Equatable {
    public var path: String
    public var name: String
    /// The chip's label, which boards use to tell chips apart (e.g. "pinctrl-bcm2711").
    public var label: String
    public var lineCount: Int
}

public struct GPIOError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: String
    public let message: String
    public var description: String { "\(code): \(message)" }
}

public enum GPIOChips {
    /// Opens every `/dev/gpiochip*` and reports it. An empty list means the kernel exposes no GPIO
    /// chip (a VM or a board without GPIO); a chip that cannot be opened is an error naming it.
    public static func list(deviceDirectory: String = "/dev") throws(GPIOError) -> [GPIOChipInfo] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: deviceDirectory)) ?? []
        let chips = entries.filter { $0.hasPrefix("gpiochip") }.sorted {
            (Int($0.dropFirst(8)) ?? 0) < (Int($1.dropFirst(8)) ?? 0)
        }
        var out: [GPIOChipInfo] = []
        for name in chips {
            let path = deviceDirectory + "/" + name
            guard let chip = gpiod_chip_open(path) else {
                let code = errno
                let hint = code == EACCES ? " (add the user to the gpio group)" : ""
                throw GPIOError(code: code == EACCES ? "E_GPIO_EACCES" : "E_GPIO_OPEN", message: "cannot open \(path): \(String(cString: strerror(code)))\(hint)")
            }
            defer { gpiod_chip_close(chip) }
            out.append(
                GPIOChipInfo(
                    path: path, name: gpiod_chip_name(chip).map { String(cString: $0) } ?? name,
                    label: gpiod_chip_label(chip).map { String(cString: $0) } ?? "", lineCount: Int(gpiod_chip_num_lines(chip))))
        }
        return out
    }
}
