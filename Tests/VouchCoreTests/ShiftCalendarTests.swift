import Foundation
import Testing
import VouchCore

/// Wall-clock milliseconds of a local date and time in `zone`, via Foundation's calendar.
func wallMs(_ year: Int, _ month: Int, _ day: Int, _ hour: Int, _ minute: Int, zone: String = "Europe/Berlin",
            expectWeekday: Int? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int64 {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = try #require(TimeZone(identifier: zone), sourceLocation: sourceLocation)
    let date = try #require(
        calendar.date(from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute)), sourceLocation: sourceLocation)
    if let expectWeekday {
        // Guards the test data itself: 1 = Sunday … 7 = Saturday.
        try #require(calendar.component(.weekday, from: date) == expectWeekday, sourceLocation: sourceLocation)
    }
    return Int64((date.timeIntervalSince1970 * 1000).rounded())
}

enum Day {
    static let sunday = 1, monday = 2, tuesday = 3, friday = 6, saturday = 7
}

@Suite struct ShiftCalendarTests {
    let weekdays: Set<Weekday> = [.mon, .tue, .wed, .thu, .fri]

    var dayShift: ShiftCalendar { ShiftCalendar(timeZoneID: "Europe/Berlin", days: weekdays, startMinute: 6 * 60, endMinute: 22 * 60) }
    var nightShift: ShiftCalendar { ShiftCalendar(timeZoneID: "Europe/Berlin", days: weekdays, startMinute: 22 * 60, endMinute: 6 * 60) }

    // 2024-03-04 is a Monday (winter time, UTC+1); 2024-07-01 is a Monday (summer time, UTC+2).
    @Test(arguments: [(2024, 3, 4), (2024, 7, 1)])
    func dayShiftOnAMondayInLocalTime(_ year: Int, _ month: Int, _ day: Int) throws {
        let shift = dayShift
        #expect(!shift.contains(wallMs: try wallMs(year, month, day, 5, 59, expectWeekday: Day.monday)))
        #expect(shift.contains(wallMs: try wallMs(year, month, day, 6, 0)))
        #expect(shift.contains(wallMs: try wallMs(year, month, day, 12, 0)))
        #expect(shift.contains(wallMs: try wallMs(year, month, day, 21, 59)))
        #expect(!shift.contains(wallMs: try wallMs(year, month, day, 22, 0)))
        #expect(!shift.contains(wallMs: try wallMs(year, month, day, 23, 30)))
    }

    @Test func dayShiftIsOffAtTheWeekend() throws {
        #expect(!dayShift.contains(wallMs: try wallMs(2024, 3, 9, 12, 0, expectWeekday: Day.saturday)))
        #expect(!dayShift.contains(wallMs: try wallMs(2024, 3, 10, 12, 0, expectWeekday: Day.sunday)))
        #expect(dayShift.contains(wallMs: try wallMs(2024, 3, 8, 12, 0, expectWeekday: Day.friday)))
    }

    @Test func dayShiftUsesTheShiftTimeZoneNotUTC() throws {
        // 05:30 UTC on a Monday in summer is 07:30 in Berlin (in shift); 21:30 UTC is 23:30 (out).
        #expect(dayShift.contains(wallMs: try wallMs(2024, 7, 1, 5, 30, zone: "UTC", expectWeekday: Day.monday)))
        #expect(!dayShift.contains(wallMs: try wallMs(2024, 7, 1, 21, 30, zone: "UTC")))
        let utcShift = ShiftCalendar(timeZoneID: "UTC", days: weekdays, startMinute: 6 * 60, endMinute: 22 * 60)
        #expect(!utcShift.contains(wallMs: try wallMs(2024, 7, 1, 5, 30, zone: "UTC")))
        #expect(utcShift.contains(wallMs: try wallMs(2024, 7, 1, 21, 30, zone: "UTC")))
    }

    @Test func overnightShiftBelongsToTheDayItStarts() throws {
        let shift = nightShift
        // Friday 2024-03-08 23:00: Friday's shift.
        #expect(shift.contains(wallMs: try wallMs(2024, 3, 8, 23, 0, expectWeekday: Day.friday)))
        #expect(shift.contains(wallMs: try wallMs(2024, 3, 8, 22, 0)))
        #expect(!shift.contains(wallMs: try wallMs(2024, 3, 8, 21, 59)))
        // Saturday 03:00 and 05:59: still Friday's shift; 06:00 it has ended.
        #expect(shift.contains(wallMs: try wallMs(2024, 3, 9, 3, 0, expectWeekday: Day.saturday)))
        #expect(shift.contains(wallMs: try wallMs(2024, 3, 9, 5, 59)))
        #expect(!shift.contains(wallMs: try wallMs(2024, 3, 9, 6, 0)))
        // Saturday evening: no shift starts on Saturday.
        #expect(!shift.contains(wallMs: try wallMs(2024, 3, 9, 23, 0)))
        // Sunday 03:00: Saturday is not a shift day.
        #expect(!shift.contains(wallMs: try wallMs(2024, 3, 10, 3, 0, expectWeekday: Day.sunday)))
        // Monday 03:00: Sunday is not a shift day; Monday 22:30 is Monday's shift.
        #expect(!shift.contains(wallMs: try wallMs(2024, 3, 11, 3, 0, expectWeekday: Day.monday)))
        #expect(shift.contains(wallMs: try wallMs(2024, 3, 11, 22, 30)))
        // Tuesday 03:00: Monday's shift.
        #expect(shift.contains(wallMs: try wallMs(2024, 3, 12, 3, 0, expectWeekday: Day.tuesday)))
    }

    @Test func overnightShiftFromSundayCarriesIntoMonday() throws {
        let shift = ShiftCalendar(timeZoneID: "Europe/Berlin", days: [.sun], startMinute: 22 * 60, endMinute: 6 * 60)
        #expect(shift.contains(wallMs: try wallMs(2024, 3, 11, 2, 0, expectWeekday: Day.monday)))
        #expect(!shift.contains(wallMs: try wallMs(2024, 3, 10, 2, 0, expectWeekday: Day.sunday)))
        #expect(shift.contains(wallMs: try wallMs(2024, 3, 10, 23, 0)))
    }

    @Test func wholeDayEveryDayIsAlwaysIn() throws {
        let shift = ShiftCalendar(timeZoneID: "Europe/Berlin", days: Set(Weekday.allCases), startMinute: 0, endMinute: 24 * 60)
        for day in 4...10 {  // Monday 2024-03-04 … Sunday 2024-03-10
            for (hour, minute) in [(0, 0), (0, 1), (5, 59), (12, 0), (23, 59)] {
                #expect(shift.contains(wallMs: try wallMs(2024, 3, day, hour, minute)), "2024-03-\(day) \(hour):\(minute)")
            }
        }
    }

    @Test func unknownTimeZoneIsNeverInShift() throws {
        let shift = ShiftCalendar(timeZoneID: "Mars/Olympus", days: Set(Weekday.allCases), startMinute: 0, endMinute: 24 * 60)
        #expect(!shift.contains(wallMs: try wallMs(2024, 3, 4, 12, 0)))
    }
}
