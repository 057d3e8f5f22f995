import Foundation

@main
struct VouchBenchModbus {
    static func main() async {
        do { try await ModbusPollBench.run(Array(CommandLine.arguments.dropFirst())) } catch {
            FileHandle.standardError.write(Data("vouch-bench-modbus: \(error)\n".utf8))
            exit(64)
        }
    }
}
