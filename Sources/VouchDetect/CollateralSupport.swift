import VouchCore

/// When a collateral rule watches its channel. The calendar decides, through the ``SiteContext`` each
/// sample comes with: a door matters at night (`outsideBusinessHours`), a tilt sensor on parked
/// equipment when no shift runs it (`outsideShift`), an enclosure switch at all times (`always`).
public enum DetectorWhen: String, Sendable, Equatable, CaseIterable {
    case always
    /// Raw values are the config's (`when = "outside_business_hours"`), as events report them.
    case outsideBusinessHours = "outside_business_hours"
    case outsideShift = "outside_shift"

    @inline(__always)
    public func holds(_ context: SiteContext) -> Bool {
        switch self {
        case .always: true
        case .outsideBusinessHours: !context.businessHours
        case .outsideShift: !context.inShift
        }
    }

    /// For explanations: "" or " outside business hours".
    var phrase: String {
        switch self {
        case .always: ""
        case .outsideBusinessHours: " outside business hours"
        case .outsideShift: " outside the shift"
        }
    }
}

/// Integer helpers that never trap: detectors are fed whatever a CSV replay or a faulty register
/// gives them, and an absurd value must give a wrong comparison at worst, never a crashed agent.
enum DetectorMath {
    @inline(__always)
    static func minus(_ a: Int64, _ b: Int64) -> Int64 {
        let (r, overflow) = a.subtractingReportingOverflow(b)
        return overflow ? (b < 0 ? .max : .min) : r
    }

    @inline(__always)
    static func plus(_ a: Int64, _ b: Int64) -> Int64 {
        let (r, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b < 0 ? .min : .max) : r
    }

    /// `perMille` ‰ of |whole|, without overflowing on large values.
    static func perMille(_ perMille: Int64, of whole: Int64) -> Int64 {
        let w = whole.magnitude, p = perMille.magnitude
        let (r, overflow) = (w / 1000).multipliedReportingOverflow(by: p)
        let (r2, overflow2) = r.addingReportingOverflow((w % 1000) * p / 1000)
        return overflow || overflow2 || r2 > UInt64(Int64.max) ? .max : Int64(r2)
    }

    /// The smaller of the tolerances that are set (a change counts when it exceeds either); nil when
    /// none is set.
    static func tolerance(abs: Int64?, perMille: Int64?, of whole: Int64) -> Int64? {
        let relative = perMille.map { Self.perMille($0, of: whole) }
        switch (abs, relative) {
        case (nil, nil): return nil
        case (let a?, nil): return a
        case (nil, let r?): return r
        case (let a?, let r?): return min(a, r)
        }
    }

    /// `part` of `whole` in per mille (for "31.0 %"), 0 when `whole` is 0.
    static func share(_ part: Int64, of whole: Int64) -> Int64 {
        guard whole != 0 else { return 0 }
        let (scaled, overflow) = part.magnitude.multipliedReportingOverflow(by: 1000)
        let r = overflow ? part.magnitude / whole.magnitude * 1000 : scaled / whole.magnitude
        return r > UInt64(Int64.max) ? .max : Int64(r)
    }
}

/// Text pieces for explanations (only called when a finding is made).
enum DetectorText {
    /// Per mille as "31.0 %".
    static func percent(_ perMille: Int64) -> String { IntegerScaling.text(perMille, exponent: -1) + " %" }

    static func optional(_ v: Int64?) -> ParameterValue { v.map { .int($0) } ?? .text("none") }
}

/// The anomaly score of a condition that is developing toward an event: 0.5 when it begins, rising
/// to 0.95 as its confirming duration runs out (1 is kept for a confirmed event).
@inline(__always)
func developingScore(elapsedMs: Int64, neededMs: Int64) -> Double {
    guard neededMs > 0 else { return 0.95 }
    return 0.5 + 0.45 * min(1, Double(max(0, elapsedMs)) / Double(neededMs))
}
