import Testing
import VouchCore

/// `[release]`: the longest release window a `vouch release open` may ask for.
struct ReleaseConfigTests {
    static let site = DetectConfigTests.site

    @Test func theDefaultIsTwelveHoursAndASetValueIsRead() throws {
        #expect(try ConfigLoader.parse(Self.site, file: "vouch.toml").release.maxDuration == .seconds(12 * 3_600))
        #expect(try ConfigLoader.parse(Self.site + "[release]\nmax_duration = \"90m\"\n", file: "vouch.toml").release.maxDuration == .seconds(5_400))
    }

    @Test(arguments: [
        ("max_duration = \"30s\"\n", "\"max_duration\" in [release] is 30s, shorter than the minimum of 1m"),
        ("max_duration = \"8d\"\n", "\"max_duration\" in [release] is longer than the limit of 7 days (\"7d\"): a release window that long would hide a theft for a week"),
        ("max_duraton = \"2h\"\n", "unknown key \"max_duraton\" in [release]; did you mean \"max_duration\"?"),
    ] as [(String, String)])
    func badValuesAreReportedOnTheirLine(body: String, message: String) {
        let text = Self.site + "[release]\n" + body
        let d = configDiagnostics(text)
        #expect(d.map(\.message) == [message])
        #expect(d.first?.position.line == position(of: String(body.prefix(8)), in: text).line)
    }
}
