import ArgumentParser

struct DetectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Run the configured detectors offline, to tune them on a site's history.",
        discussion: """
            Examples:
              vouch detect replay --config /etc/vouch/vouch.toml --csv press-week.csv
              vouch detect replay --config vouch.toml --csv history.csv --channel meter.power=P_total --out replay.csv
            """,
        subcommands: [DetectReplay.self])
}
