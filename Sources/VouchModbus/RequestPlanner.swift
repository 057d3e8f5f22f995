import VouchCore

/// One read request of a poll cycle: a block of one register kind that serves one or more channels.
public struct ModbusRequest: Sendable, Equatable {
    public var kind: ModbusRegisterKind
    public var address: Int
    /// Registers (or bits, for coils and discrete inputs).
    public var count: Int
    /// Indices into the device's channels this request serves, in address order.
    public var channels: [Int]

    public init(kind: ModbusRegisterKind, address: Int, count: Int, channels: [Int]) {
        self.kind = kind
        self.address = address
        self.count = count
        self.channels = channels
    }

    /// Words of the block that no channel uses (read only to save a request).
    public func unusedCount(of all: [ModbusChannelSettings]) -> Int {
        var used = Set<Int>()
        for i in channels {
            let c = all[i]
            used.formUnion(c.address..<(c.address + c.registerCount))
        }
        return count - used.count
    }

    /// The words of one channel inside this request's answer.
    public func slice(_ words: [UInt16], for channel: ModbusChannelSettings) -> [UInt16] {
        let from = channel.address - address
        return Array(words[from..<(from + channel.registerCount)])
    }
}

/// Joins the channels of one device into the fewest read requests.
///
/// Rules: one request reads one kind; it stays within the protocol's limit (125 registers, 2000 bits);
/// two channels share a request when at most `maxGap` unused registers lie between them (for coils and
/// discrete inputs, `maxGap` × 16 bits: the same bytes on the wire).
/// Overlapping channels (a bit and the word holding it) share one read. The plan is deterministic:
/// requests in function-code order, then by address.
public enum RequestPlanner {
    /// A device's plan, within its own request limit.
    public static func plan(device: ModbusDeviceSettings) -> [ModbusRequest] {
        plan(device.channels, maxGap: device.maxGap, maxRegisters: device.maxRegisters)
    }

    /// `maxRegisters` lowers the 125-register limit of holding/input reads (bits keep 2000).
    public static func plan(_ channels: [ModbusChannelSettings], maxGap: Int, maxRegisters: Int = 125) -> [ModbusRequest] {
        let order = channels.indices.sorted { a, b in
            let x = channels[a], y = channels[b]
            return (x.register, x.address, a) < (y.register, y.address, b)
        }
        var requests: [ModbusRequest] = []
        for i in order {
            let c = channels[i]
            let end = c.address + c.registerCount
            let gapAllowed = c.register.isBit ? maxGap * 16 : maxGap
            if var last = requests.last, last.kind == c.register, c.address - (last.address + last.count) <= gapAllowed,
                max(last.address + last.count, end) - last.address <= (c.register.isBit ? c.register.maxPerRequest : min(c.register.maxPerRequest, maxRegisters))
            {
                last.count = max(last.address + last.count, end) - last.address
                last.channels.append(i)
                requests[requests.count - 1] = last
            } else {
                requests.append(ModbusRequest(kind: c.register, address: c.address, count: c.registerCount, channels: [i]))
            }
        }
        return requests
    }

    /// The plan a device falls back to when a joined request is refused (a device that answers an
    /// illegal-address exception for the unused registers in between): only channels that touch share a read.
    public static func gapless(_ channels: [ModbusChannelSettings], subset: [Int]) -> [ModbusRequest] {
        let picked = subset.map { channels[$0] }
        return plan(picked, maxGap: 0).map { r in
            var r = r
            r.channels = r.channels.map { subset[$0] }
            return r
        }
    }

    /// One line per request, as `vouch modbus plan` prints it and the golden tests pin it:
    /// `FC3 holding 0-9 (10, 2 unused): meter.a meter.b`.
    public static func describe(_ requests: [ModbusRequest], channels: [ModbusChannelSettings]) -> [String] {
        requests.map { r in
            let unused = r.unusedCount(of: channels)
            let range = r.count == 1 ? "\(r.address)" : "\(r.address)-\(r.address + r.count - 1)"
            return "FC\(r.kind.functionCode) \(r.kind.rawValue) \(range) (\(r.count)\(unused > 0 ? ", \(unused) unused" : "")): " + r.channels.map { channels[$0].id }.joined(separator: " ")
        }
    }

    /// A device's plan as text: a header line, then one line per request.
    public static func describe(device: ModbusDeviceSettings) -> [String] {
        let requests = plan(device: device)
        func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }
        return ["\(device.name) (\(plural(device.channels.count, "channel")), \(plural(requests.count, "request")))"] + describe(requests, channels: device.channels)
    }
}
