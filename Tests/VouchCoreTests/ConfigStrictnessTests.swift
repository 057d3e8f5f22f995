import Testing
import VouchCore

/// Values that used to be read leniently, each of which could silently mis-configure a site.
@Suite struct ConfigStrictnessTests {
    func onlyDiagnostic(_ old: String, _ new: String) -> ConfigDiagnostic? {
        let diagnostics = configDiagnostics(ExampleConfig.replacing(old, with: new))
        #expect(diagnostics.count == 1, "\(diagnostics.map(\.description))")
        return diagnostics.first
    }

    @Test(arguments: ["monkey", "mo", "frid"])
    func weekdayMustBeAWholeName(_ word: String) {
        let d = onlyDiagnostic(#"days = ["mon", "tue", "wed", "thu", "fri"]"#, #"days = ["\#(word)"]"#)
        #expect(d?.message.contains("weekday name") == true)
    }

    @Test func fullAndMixedCaseDayNamesAreAccepted() throws {
        let config = try ConfigLoader.parse(ExampleConfig.replacing(#"days = ["mon", "tue", "wed", "thu", "fri"]"#, with: #"days = ["Monday", "SAT"]"#), file: "v.toml")
        #expect(config.shift.days == [.mon, .sat])
    }

    @Test func emptyDaysIsRefusedBecauseNothingWouldEverAlarm() {
        let d = onlyDiagnostic(#"days = ["mon", "tue", "wed", "thu", "fri"]"#, "days = []")
        #expect(d?.message.contains("empty") == true)
    }

    @Test(arguments: ["+15s", "-15s", "1_5s", " 15s", "15 s"])
    func durationIsDigitsThenUnit(_ text: String) {
        let d = onlyDiagnostic(#"for = "15s""#, #"for = "\#(text)""#)
        #expect(d?.message.contains("not a duration") == true, "\(String(describing: d))")
    }

    @Test(arguments: ["6:00", "+6:00", "06:0", "06:00:00", "0６:00"])
    func timeOfDayIsExactlyHHMM(_ text: String) {
        let d = onlyDiagnostic(#"start = "06:00""#, #"start = "\#(text)""#)
        #expect(d?.message.contains("HH:MM") == true, "\(String(describing: d))")
    }
}
