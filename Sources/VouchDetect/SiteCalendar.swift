import Foundation
import VouchCore

/// The site's week in its own time zone: production shifts, holidays, planned maintenance and
/// business hours. Gives the ``SiteContext`` of a moment with integer arithmetic on a cached UTC
/// offset (Foundation is asked only when the moment leaves the offset's span, i.e. at a DST change),
/// so every sample of every channel can be given its context.
public struct SiteCalendar: Sendable {
    /// Days of the week and a daily span in local minutes; `end <= start` runs overnight, the early
    /// part belonging to the day it started (a Friday 22:00–06:00 shift covers Saturday 03:00).
    public struct Hours: Sendable, Equatable {
        public var days: Set<Weekday> { didSet { dayMask = Self.mask(days) } }
        public var startMinute: Int
        public var endMinute: Int
        /// `days` as bits, Monday = bit 0: asked for every sample, so no hashing.
        private var dayMask: UInt8

        public init(days: Set<Weekday>, startMinute: Int, endMinute: Int) {
            self.days = days
            self.startMinute = startMinute
            self.endMinute = endMinute
            dayMask = Self.mask(days)
        }

        static func mask(_ days: Set<Weekday>) -> UInt8 {
            days.reduce(0) { $0 | (1 << UInt8(Weekday.allCases.firstIndex(of: $1) ?? 0)) }
        }

        func contains(day: Int64) -> Bool { dayMask & (1 << UInt8(SiteCalendar.floorMod(day + 3, 7))) != 0 }

        /// Always: every day, 00:00–24:00.
        public static let always = Hours(days: Set(Weekday.allCases), startMinute: 0, endMinute: 1440)

        /// Whether local minute `minute` of local day `day` is covered; the day it belongs to if so.
        func covering(day: Int64, minute: Int) -> Int64? {
            if startMinute < endMinute {
                return contains(day: day) && minute >= startMinute && minute < endMinute ? day : nil
            }
            if minute >= startMinute && contains(day: day) { return day }
            if minute < endMinute && contains(day: day - 1) { return day - 1 }
            return nil
        }
    }

    /// A planned stop: from `startWallMs` up to (not including) `endWallMs` (the config's type).
    public typealias Window = MaintenanceWindow

    public let timeZoneID: String
    public let shift: Hours
    public let businessHours: Hours
    /// Local days (days since 1970-01-01 in the site's zone) without production.
    public let holidays: Set<Int64>
    public let maintenance: [Window]
    private let zone: TimeZone?
    /// The UTC offset valid over [offsetFromMs, offsetUntilMs).
    private var offsetMs: Int64 = 0
    private var offsetFromMs: Int64 = 1
    private var offsetUntilMs: Int64 = 0

    public init(timeZoneID: String, shift: Hours, businessHours: Hours? = nil, holidays: Set<Int64> = [], maintenance: [Window] = []) {
        self.timeZoneID = timeZoneID
        self.shift = shift
        self.businessHours = businessHours ?? shift
        self.holidays = holidays
        self.maintenance = maintenance.sorted { $0.startWallMs < $1.startWallMs }
        zone = TimeZone(identifier: timeZoneID)
    }

    /// The context at `wallMs`; `releaseOpen` comes from the release windows the agent keeps.
    public mutating func context(wallMs: Int64, releaseOpen: Bool = false) -> SiteContext {
        let local = wallMs + utcOffsetMs(at: wallMs)
        let day = Self.floorDiv(local, 86_400_000)
        let minute = Int((local - day * 86_400_000) / 60_000)
        let inMaintenance = !maintenance.isEmpty && maintenance.contains { wallMs >= $0.startWallMs && wallMs < $0.endWallMs }
        let shiftDay = shift.covering(day: day, minute: minute)
        let holiday = !holidays.isEmpty && (shiftDay.map { holidays.contains($0) } ?? holidays.contains(day))
        let weekdayIndex = Int(Self.floorMod(day + 3, 7))  // 1970-01-01 was a Thursday: 0 = Monday
        return SiteContext(
            inShift: shiftDay != nil && !holiday && !inMaintenance,
            plannedStop: inMaintenance || (shiftDay != nil && holiday),
            businessHours: businessHours.covering(day: day, minute: minute).map { holidays.isEmpty || !holidays.contains($0) } ?? false,
            releaseOpen: releaseOpen,
            hourOfWeek: weekdayIndex * 24 + minute / 60)
    }

    /// The zone's offset at `wallMs`, from the cache while it holds.
    mutating func utcOffsetMs(at wallMs: Int64) -> Int64 {
        if wallMs >= offsetFromMs && wallMs < offsetUntilMs { return offsetMs }
        guard let zone else { return 0 }
        let date = Date(timeIntervalSince1970: Double(wallMs) / 1000)
        offsetMs = Int64(zone.secondsFromGMT(for: date)) * 1000
        // Valid from the previous transition (not known cheaply: from here) to the next one, or a day.
        offsetFromMs = wallMs
        if let next = zone.nextDaylightSavingTimeTransition(after: date) {
            offsetUntilMs = Int64((next.timeIntervalSince1970 * 1000).rounded(.down))
        } else {
            offsetUntilMs = wallMs + 86_400_000
        }
        return offsetMs
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }
    static func floorMod(_ a: Int64, _ b: Int64) -> Int64 { a - floorDiv(a, b) * b }

    /// Days since 1970-01-01 of a date (see ``CivilDate``).
    public static func dayNumber(year: Int, month: Int, day: Int) -> Int64 { CivilDate.dayNumber(year: year, month: month, day: day) }

    /// "YYYY-MM-DD" as a day number; nil when it is not a real date.
    public static func dayNumber(iso text: String) -> Int64? { CivilDate.dayNumber(iso: text) }
}
