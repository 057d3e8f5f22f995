import Foundation
import Testing
import VouchCore
@testable import VouchDetect

struct SiteCalendarTests {
    /// Wall milliseconds of a local time in `zone`, computed by Foundation (the reference).
    static func wallMs(_ zone: String, _ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int) -> Int64 {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: zone)!
        let date = calendar.date(from: DateComponents(year: y, month: mo, day: d, hour: h, minute: mi))!
        return Int64(date.timeIntervalSince1970 * 1000)
    }

    static let weekdays: Set<Weekday> = [.mon, .tue, .wed, .thu, .fri]

    @Test func aDayShiftOnWeekdaysInTheSitesZone() {
        var c = SiteCalendar(timeZoneID: "Europe/Berlin", shift: .init(days: Self.weekdays, startMinute: 6 * 60, endMinute: 22 * 60))
        // Tuesday 2026-12-01.
        #expect(c.context(wallMs: Self.wallMs("Europe/Berlin", 2026, 12, 1, 5, 59)).inShift == false)
        #expect(c.context(wallMs: Self.wallMs("Europe/Berlin", 2026, 12, 1, 6, 0)).inShift == true)
        #expect(c.context(wallMs: Self.wallMs("Europe/Berlin", 2026, 12, 1, 21, 59)).inShift == true)
        #expect(c.context(wallMs: Self.wallMs("Europe/Berlin", 2026, 12, 1, 22, 0)).inShift == false)
        // Saturday.
        #expect(c.context(wallMs: Self.wallMs("Europe/Berlin", 2026, 12, 5, 12, 0)).inShift == false)
        #expect(c.context(wallMs: Self.wallMs("Europe/Berlin", 2026, 12, 1, 13, 30)).hourOfWeek == 24 + 13)
    }

    @Test func anOvernightShiftBelongsToTheDayItStarted() {
        var c = SiteCalendar(timeZoneID: "UTC", shift: .init(days: [.fri], startMinute: 22 * 60, endMinute: 6 * 60))
        #expect(c.context(wallMs: Self.wallMs("UTC", 2026, 12, 4, 23, 0)).inShift, "Friday 23:00")
        #expect(c.context(wallMs: Self.wallMs("UTC", 2026, 12, 5, 3, 0)).inShift, "Saturday 03:00 is Friday's shift")
        #expect(!c.context(wallMs: Self.wallMs("UTC", 2026, 12, 5, 23, 0)).inShift, "Saturday 23:00 is not")
        #expect(!c.context(wallMs: Self.wallMs("UTC", 2026, 12, 4, 3, 0)).inShift, "Friday 03:00 belongs to Thursday")
    }

    @Test func holidaysAndMaintenanceArePlannedStops() {
        let christmas = SiteCalendar.dayNumber(year: 2026, month: 12, day: 25)
        let maintenance = SiteCalendar.Window(startWallMs: Self.wallMs("UTC", 2026, 12, 2, 10, 0), endWallMs: Self.wallMs("UTC", 2026, 12, 2, 12, 0), reason: "press service")
        var c = SiteCalendar(timeZoneID: "UTC", shift: .init(days: Self.weekdays, startMinute: 360, endMinute: 1320), holidays: [christmas], maintenance: [maintenance])
        let onHoliday = c.context(wallMs: Self.wallMs("UTC", 2026, 12, 25, 12, 0))
        #expect(!onHoliday.inShift && onHoliday.plannedStop && !onHoliday.businessHours)
        let inService = c.context(wallMs: Self.wallMs("UTC", 2026, 12, 2, 11, 59))
        #expect(!inService.inShift && inService.plannedStop)
        let after = c.context(wallMs: Self.wallMs("UTC", 2026, 12, 2, 12, 0))
        #expect(after.inShift && !after.plannedStop)
    }

    @Test func daylightSavingChangesMoveTheShiftWithLocalTime() {
        // Europe/Berlin leaves summer time on 2026-10-25 at 03:00 local (01:00 UTC).
        var c = SiteCalendar(timeZoneID: "Europe/Berlin", shift: .init(days: Set(Weekday.allCases), startMinute: 6 * 60, endMinute: 22 * 60))
        for (d, h) in [(24, 5), (24, 6), (25, 5), (25, 6), (26, 5), (26, 6)] {
            let wall = Self.wallMs("Europe/Berlin", 2026, 10, d, h, 30)
            #expect(c.context(wallMs: wall).inShift == (h >= 6), "10-\(d) \(h):30 local")
        }
        // Every 10 minutes across both 2026 changes, the cached offset agrees with Foundation.
        let zone = TimeZone(identifier: "Europe/Berlin")!
        for start in [Self.wallMs("UTC", 2026, 3, 28, 0, 0), Self.wallMs("UTC", 2026, 10, 24, 0, 0)] {
            for step in 0..<(3 * 144) {
                let wall = start + Int64(step) * 600_000
                let expected = Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(wall) / 1000))) * 1000
                #expect(c.utcOffsetMs(at: wall) == expected, "at \(wall)")
            }
        }
    }

    @Test func dayNumbersAreCivilDates() {
        #expect(SiteCalendar.dayNumber(year: 1970, month: 1, day: 1) == 0)
        #expect(SiteCalendar.dayNumber(iso: "2000-03-01") == 11_017)
        #expect(SiteCalendar.dayNumber(iso: "2026-02-29") == nil)
        #expect(SiteCalendar.dayNumber(iso: "2024-02-29") != nil)
        #expect(SiteCalendar.dayNumber(iso: "2026-13-01") == nil)
        #expect(SiteCalendar.dayNumber(iso: "26-12-01") == nil)
        #expect(SiteCalendar.dayNumber(year: 1969, month: 12, day: 31) == -1)
    }
}

struct EvidenceWindowTests {
    static func s(_ t: Int64, _ v: Int64) -> DetectorSample { DetectorSample(monoMs: t, wallMs: t, value: v) }

    @Test func keepsTheSamplesBeforeAndAfterTheStart() {
        var w = EvidenceWindow(before: 3, after: 2)
        for t in 1...5 { w.observe(Self.s(Int64(t), Int64(t))) }
        w.begin(at: Self.s(6, 60))
        w.observe(Self.s(6, 60))
        for t in 7...9 { w.observe(Self.s(Int64(t), Int64(t))) }
        #expect(w.samples.map(\.monoMs) == [3, 4, 5, 6, 7], "3 before, the start and 1 after (2 from the start)")
        w.finish()
        #expect(w.samples.map(\.monoMs) == [3, 4, 5, 6, 7], "the finished event's window until the next sample")
        w.observe(Self.s(10, 10))
        w.observe(Self.s(11, 11))
        w.begin(at: Self.s(12, 12))
        #expect(w.samples.map(\.monoMs) == [7, 10, 11, 12], "before: the samples just before the new start (8 and 9 came while the first window was full)")
        #expect(w.stateBytes == MemoryLayout<EvidenceWindow>.size + 5 * 24)
        // A failed reading survives the packing.
        var f = EvidenceWindow(before: 1, after: 1)
        f.observe(DetectorSample(monoMs: 1, wallMs: 1, value: nil))
        f.begin(at: Self.s(2, 2))
        #expect(f.samples == [DetectorSample(monoMs: 1, wallMs: 1, value: nil), Self.s(2, 2)])
    }
}
