import Foundation
import Testing
import VouchCore
import VouchModbus

/// Golden cases for the request planner: each `planner-cases/NAME.toml` is the Modbus part of a
/// config (loaded by the real config loader), `NAME.plan` the plan `vouch modbus plan` must print
/// for it. Cases are named after what they pin.
struct PlannerGoldenTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("planner-cases")

    static let header = """
        [device]
        id = "planner-test"
        data_dir = "/tmp"

        [bank]
        url = "http://127.0.0.1:1"

        [shift]
        timezone = "UTC"
        days = ["mon"]
        start = "06:00"
        end = "22:00"

        [evidence]

        """

    static var cases: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".toml") }.map { String($0.dropLast(5)) }.sorted()
    }

    @Test func thereAreCases() {
        #expect(Self.cases.count >= 6, "planner-cases/ went missing")
    }

    @Test(arguments: PlannerGoldenTests.cases)
    func plan(_ name: String) throws {
        let file = Self.directory.appendingPathComponent("\(name).toml")
        let text = try String(contentsOf: file, encoding: .utf8)
        let config = try ConfigLoader.parse(Self.header + text, file: file.path)
        let actual = config.modbusDevices.flatMap { RequestPlanner.describe(device: $0) }
        let expected = try String(contentsOf: Self.directory.appendingPathComponent("\(name).plan"), encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(actual == expected)
        // Whatever the shape, every plan keeps the protocol's limits and serves every channel exactly once.
        for device in config.modbusDevices {
            let plan = RequestPlanner.plan(device.channels, maxGap: device.maxGap)
            #expect(plan.allSatisfy { $0.count <= $0.kind.maxPerRequest })
            #expect(plan.flatMap(\.channels).sorted() == Array(device.channels.indices))
            for r in plan {
                for c in r.channels.map({ device.channels[$0] }) {
                    #expect(c.register == r.kind && c.address >= r.address && c.address + c.registerCount <= r.address + r.count)
                }
            }
        }
    }
}
